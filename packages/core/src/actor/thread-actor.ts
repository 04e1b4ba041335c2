/** A replica in a worker thread of this process: cheap to start, shares the process's memory and env. */
import { Worker } from 'node:worker_threads';
import { ChannelActor } from './actor-ref.js';
import { PortChannel } from './channel.js';
import type { CallServer } from './rpc-peer.js';

export const ACTOR_BOOTSTRAP = new URL('./actor-bootstrap.mjs', import.meta.url);

export interface ThreadActorOptions {
  id: string;
  /** Answers the replica's handle calls. */
  server: CallServer;
}

export function createThreadActor(options: ThreadActorOptions): ChannelActor {
  // execArgv [] : the parent's loader flags (vitest, tsx CLI) must not be inherited; the bootstrap registers tsx.
  const worker = new Worker(ACTOR_BOOTSTRAP, { execArgv: [], name: options.id });
  return new ChannelActor(options.id, 'thread', process.pid, new PortChannel(worker), options.server, async () => {
    await worker.terminate();
  });
}
