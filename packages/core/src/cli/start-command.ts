/**
 * `serve start --head`: start a head with no application: the controller, the cluster port agents
 * join (`serve agent --address HOST:PORT`) and `serve deploy` reaches, and the HTTP and gRPC proxies.
 * Applications come later through `serve deploy FILE:EXPORT --address HOST:PORT`. A head restarted after
 * its controller died deploys again what its checkpoint says was deployed (re-adopting the replicas its
 * agents kept). Serves until SIGINT/SIGTERM or POST /-/shutdown, like `serve run`.
 *
 * `--state etcd://HOST:PORT[,...]` (or the config's `state`): the controller state lives in etcd and
 * several heads elect a leader (cluster/ha-head.ts); this head starts as a standby and leads when elected.
 */
import { DEFAULT_CLUSTER_PORT } from '../cluster/cluster-proto.js';
import { HaHead } from '../cluster/ha-head.js';
import { headToken } from '../cluster/cluster-token.js';
import { openEtcdState, type EtcdState } from '../controller/store/open-etcd.js';
import { parseStateLocation, type StateLocation } from '../controller/store/state-url.js';
import { CliError, causeOf } from './cli-error.js';
import { clusterHeadSecurity } from './cluster-options.js';
import { acceptDeploys, redeployFromCheckpoint, restoreFromState } from './deploy-command.js';
import { loadConfig, serveUntilStopped, type RunOptions } from './run-command.js';
import { startHead } from './runtime-adapter.js';

export interface StartCommandOptions extends Omit<RunOptions, 'name' | 'routePrefix'> {
  /** commander's --head: this node is the head (the only kind `serve start` starts). */
  head?: boolean;
  /** The controller's checkpoint file. */
  checkpoint?: string;
  /** Where the controller state lives: etcd://HOST:PORT[,...][/NAME] (default: the checkpoint file). */
  state?: string;
  /** A standby's proxies send again requests cut by the leader's death (at-least-once). */
  retryAfterHeadLoss?: boolean;
}

export async function startCommand(opts: StartCommandOptions): Promise<void> {
  const config = opts.config ? loadConfig(opts.config) : undefined;
  const port = opts.clusterPort ?? DEFAULT_CLUSTER_PORT;
  const log = (line: string) => process.stdout.write(`[flotilla head] ${line}\n`);
  let location: StateLocation;
  try {
    location = parseStateLocation(opts.state ?? config?.state);
  } catch (err) {
    throw new CliError(`Bad --state: ${causeOf(err)}`, 'e.g. --state etcd://127.0.0.1:2379 (one or more members).');
  }
  if (location.kind === 'file' && location.path && opts.checkpoint && location.path !== opts.checkpoint) {
    throw new CliError('--state names a file and --checkpoint another.', 'Give one of them.', 2);
  }
  let etcd: EtcdState | undefined;
  if (location.kind === 'etcd') {
    try {
      etcd = await openEtcdState(location, log);
    } catch (err) {
      throw new CliError(
        `Could not start the head: ${causeOf(err)}`,
        'Start etcd at that address (Debian: apt-get install etcd-server), or drop --state to keep the state in a local file.',
      );
    }
  }
  const security = clusterHeadSecurity(opts);
  let instance: Awaited<ReturnType<typeof startHead>>;
  try {
    instance = await startHead({
      config,
      checkpoint: location.kind === 'file' ? (location.path ?? opts.checkpoint) : undefined,
      store: etcd?.store,
      cluster: { port, host: opts.clusterHost ?? opts.host, log, ...security },
    });
  } catch (err) {
    await etcd?.close();
    throw new CliError(
      `Could not start the head: ${causeOf(err)}`,
      `If the cluster port ${port} is taken, pick another with --cluster-port (0 picks a free one).`,
    );
  }
  acceptDeploys(instance);
  if (!etcd) {
    await redeployFromCheckpoint(instance, log);
    await serveUntilStopped(instance, opts, config, [], 'no application yet (serve deploy adds them)');
    return;
  }
  const token = headToken(security).token;
  const tls = security.tls;
  const ha = new HaHead({
    instance,
    leadership: etcd.leadership,
    store: etcd.store,
    restore: (i) => restoreFromState(i, log),
    token: () => token,
    retryAfterHeadLoss: opts.retryAfterHeadLoss,
    // Heads dial each other with their own certificate, trusting the cluster CA (one CA signs them all).
    clientTls: tls && { caFile: tls.caFile, certFile: tls.certFile, keyFile: tls.keyFile },
    log,
    onLost: (reason) => {
      // Another head may lead by now: stop at once (the agents keep their replicas for it to re-adopt).
      process.stderr.write(`[flotilla head] ${reason}; exiting so that a supervisor restarts this head as a standby\n`);
      process.exit(1);
    },
  });
  const ingress = await serveUntilStopped(instance, opts, config, [], 'no application yet (serve deploy adds them)');
  log(`controller state in ${etcd.store.description}; campaigning to lead (standing by until elected)`);
  await ha.start(ingress.http?.url);
}
