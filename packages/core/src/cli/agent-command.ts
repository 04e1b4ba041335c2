/**
 * `serve agent --address HEAD:PORT [--cpus N --gpus N --memory-mb N --node-id ID --label k=v --working-dir DIR]`:
 * join a head as a node agent and host replicas until SIGINT/SIGTERM (then kill them and exit 0; the
 * head replaces them elsewhere). The application code must be at the same path on this node as on the head.
 * The agent also runs an HTTP proxy for every application (--http-port, default 8000; --no-proxy for none).
 * It presents the head's cluster token and, with --tls/--tls-ca, dials over TLS (cluster-options.ts).
 */
import { ClusterAgent } from '../cluster/agent.js';
import { CliError, causeOf } from './cli-error.js';
import { parseKeyValues } from './app-loader.js';
import { clusterClientAuth, type ClusterClientCliOptions } from './cluster-options.js';

export interface AgentCommandOptions extends ClusterClientCliOptions {
  address?: string;
  nodeId?: string;
  cpus?: number;
  gpus?: number;
  memoryMb?: number;
  label?: string[];
  workingDir?: string;
  connectTimeout?: number;
  httpHost?: string;
  httpPort?: number;
  /** commander's --no-proxy. */
  proxy?: boolean;
  /** The proxy sends again requests cut by the head's death (at-least-once). */
  retryAfterHeadLoss?: boolean;
}

const DEFAULT_PROXY_PORT = 8000;

export async function agentCommand(opts: AgentCommandOptions): Promise<void> {
  if (!opts.address)
    throw new CliError(
      'serve agent needs --address HOST:PORT of the head.',
      'Start the head with `serve start --head` (or `serve run FILE:EXPORT --cluster-port 9100`).',
      2,
    );
  const log = (line: string) => process.stdout.write(`[flotilla agent] ${line}\n`);
  const start = (proxy: boolean) =>
    ClusterAgent.start({
      address: opts.address!,
      nodeId: opts.nodeId,
      labels: parseKeyValues(opts.label ?? []),
      workingDir: opts.workingDir,
      resources: definedOnly({ cpus: opts.cpus, gpus: opts.gpus, memoryMb: opts.memoryMb }),
      connectTimeoutMs: opts.connectTimeout,
      log,
      proxy: proxy
        ? {
            host: opts.httpHost,
            port: opts.httpPort ?? DEFAULT_PROXY_PORT,
            retryAfterHeadLoss: opts.retryAfterHeadLoss,
          }
        : undefined,
      ...clusterClientAuth(opts),
    });
  let agent: ClusterAgent;
  try {
    agent = await start(opts.proxy !== false).catch((err: NodeJS.ErrnoException) => {
      // The default port taken (say, by a head on the same machine) costs this node its proxy, not its replicas.
      if (err.code !== 'EADDRINUSE' || opts.httpPort !== undefined) throw err;
      log(`no HTTP proxy on this node: port ${DEFAULT_PROXY_PORT} is taken (pick one with --http-port)`);
      return start(false);
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new CliError(
        `Could not start the node's HTTP proxy: ${causeOf(err)}`,
        'Pick a free port with --http-port, or pass --no-proxy.',
      );
    }
    const auth = (err as Error).name === 'UnauthenticatedError' || /no cluster token/.test(causeOf(err));
    throw new CliError(
      `Could not join the head: ${causeOf(err)}`,
      auth
        ? 'Give the agent the token the head uses: FLOTILLA_CLUSTER_TOKEN or --token-file (on the head machine it is ~/.flotilla/cluster-token).'
        : "Check --address (the head's --cluster-host/--cluster-port) and that head and agent run the same Flotilla version.",
    );
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return void process.exit(130);
    stopping = true;
    log(`${signal}: stopping ${agent.actorCount} replica(s)`);
    void agent.close().finally(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

function definedOnly<T extends Record<string, number | undefined>>(o: T): Partial<Record<keyof T, number>> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<Record<keyof T, number>>;
}
