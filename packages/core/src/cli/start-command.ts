/**
 * `serve start --head`: start a head with no application: the controller, the cluster port agents
 * join (`serve agent --address HOST:PORT`) and `serve deploy` reaches, and the HTTP and gRPC proxies.
 * Applications come later through `serve deploy FILE:EXPORT --address HOST:PORT`. A head restarted after
 * its controller died deploys again what its checkpoint says was deployed (re-adopting the replicas its
 * agents kept). Serves until SIGINT/SIGTERM or POST /-/shutdown, like `serve run`.
 */
import { DEFAULT_CLUSTER_PORT } from '../cluster/cluster-proto.js';
import { CliError, causeOf } from './cli-error.js';
import { clusterHeadSecurity } from './cluster-options.js';
import { acceptDeploys, redeployFromCheckpoint } from './deploy-command.js';
import { loadConfig, serveUntilStopped, type RunOptions } from './run-command.js';
import { startHead } from './runtime-adapter.js';

export interface StartCommandOptions extends Omit<RunOptions, 'name' | 'routePrefix'> {
  /** commander's --head: this node is the head (the only kind `serve start` starts). */
  head?: boolean;
  /** The controller's checkpoint file. */
  checkpoint?: string;
}

export async function startCommand(opts: StartCommandOptions): Promise<void> {
  const config = opts.config ? loadConfig(opts.config) : undefined;
  const port = opts.clusterPort ?? DEFAULT_CLUSTER_PORT;
  let instance: Awaited<ReturnType<typeof startHead>>;
  try {
    instance = await startHead({
      config,
      checkpoint: opts.checkpoint,
      cluster: {
        port,
        host: opts.clusterHost ?? opts.host,
        log: (line) => process.stdout.write(`[flotilla head] ${line}\n`),
        ...clusterHeadSecurity(opts),
      },
    });
  } catch (err) {
    throw new CliError(
      `Could not start the head: ${causeOf(err)}`,
      `If the cluster port ${port} is taken, pick another with --cluster-port (0 picks a free one).`,
    );
  }
  acceptDeploys(instance);
  await redeployFromCheckpoint(instance, (line) => process.stdout.write(`[flotilla head] ${line}\n`));
  await serveUntilStopped(instance, opts, config, [], 'no application yet (serve deploy adds them)');
}
