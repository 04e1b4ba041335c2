/** A replica in a child process: isolated memory and its own environment (CUDA_VISIBLE_DEVICES). */
import { fork, type ChildProcess } from 'node:child_process';
import { ChannelActor } from './actor-ref.js';
import { IpcChannel } from './channel.js';
import { ACTOR_BOOTSTRAP } from './thread-actor.js';
import type { CallServer } from './rpc-peer.js';

export interface ProcessActorOptions {
  id: string;
  server: CallServer;
  /** Added to this process's environment. */
  env?: Record<string, string>;
}

/** Forks a replica process (also used by cluster agents, which bridge its IPC channel to the head). */
export function spawnActorProcess(id: string, env: Record<string, string> = {}, cwd?: string): ChildProcess {
  return fork(ACTOR_BOOTSTRAP, [], {
    // 'advanced' is structured clone, like postMessage: Maps, typed arrays and undefined survive.
    serialization: 'advanced',
    env: { ...process.env, ...env, FLOTILLA_REPLICA_ID: id },
    execArgv: [],
    cwd,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

export function createProcessActor(options: ProcessActorOptions): ChannelActor {
  const child = spawnActorProcess(options.id, options.env);
  return new ChannelActor(options.id, 'process', child.pid, new IpcChannel(child), options.server, async () => {
    child.kill('SIGKILL');
  });
}
