/**
 * A replica on another node: a process the node's agent forked on the head's StartActor, reached over
 * the agent's ActorChannel stream (stream-channel.ts). Calls, streams with credits, cancellation and
 * the replica's own handle calls (relayed back to `server` here) work as for a local process replica,
 * because the same protocol messages cross the stream.
 */
import { ChannelActor } from './actor-ref.js';
import type { CallServer } from './rpc-peer.js';
import type { StreamChannel } from './stream-channel.js';

export interface RemoteActorOptions {
  id: string;
  /** Node id of the agent that hosts it. */
  node: string;
  /** Answers the replica's handle calls. */
  server: CallServer;
  /** Attached by the head when the agent opens the actor's stream. */
  channel: StreamChannel;
  /** Asks the agent to kill the process (KillActor); false when the node is unreachable. */
  requestKill(reason: string): boolean;
  /** How long kill() waits for the agent to confirm before closing the channel itself. Default: 5000. */
  killTimeoutMs?: number;
}

export class RemoteActor extends ChannelActor {
  readonly node: string;

  constructor(options: RemoteActorOptions) {
    const { channel } = options;
    super(options.id, 'remote', undefined, channel, options.server, async () => {
      if (options.requestKill('killed by the controller')) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.killTimeoutMs ?? 5000);
          channel.onClose(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      // The agent never answered (or cannot be reached): this side is done with the actor anyway.
      channel.shutdown('killed by the controller');
    });
    this.node = options.node;
  }
}
