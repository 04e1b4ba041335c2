/**
 * `serve agent --address HEAD:PORT [--cpus N --gpus N --memory-mb N --node-id ID --label k=v --working-dir DIR]`:
 * join a head as a node agent and host replicas until SIGINT/SIGTERM (then kill them and exit 0; the
 * head replaces them elsewhere). The application code must be at the same path on this node as on the head.
 */
import { ClusterAgent } from '../cluster/agent.js';
import { CliError, causeOf } from './cli-error.js';
import { parseKeyValues } from './app-loader.js';

export interface AgentCommandOptions {
  address?: string;
  nodeId?: string;
  cpus?: number;
  gpus?: number;
  memoryMb?: number;
  label?: string[];
  workingDir?: string;
  connectTimeout?: number;
}

export async function agentCommand(opts: AgentCommandOptions): Promise<void> {
  if (!opts.address) throw new CliError('serve agent needs --address HOST:PORT of the head.', 'Start the head with `serve run FILE:EXPORT --cluster-port 9100`.', 2);
  const log = (line: string) => process.stdout.write(`[flotilla agent] ${line}\n`);
  let agent: ClusterAgent;
  try {
    agent = await ClusterAgent.start({
      address: opts.address, nodeId: opts.nodeId, labels: parseKeyValues(opts.label ?? []), workingDir: opts.workingDir,
      resources: definedOnly({ cpus: opts.cpus, gpus: opts.gpus, memoryMb: opts.memoryMb }),
      connectTimeoutMs: opts.connectTimeout, log,
    });
  } catch (err) {
    throw new CliError(`Could not join the head: ${causeOf(err)}`,
      'Check --address (the head\'s --cluster-host/--cluster-port) and that head and agent run the same Flotilla version.');
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
