/**
 * Every message that crosses a thread or process boundary between the controller's process and a
 * replica, and between two replicas linked directly. Both directions use the same data-plane messages:
 * the parent calls replica methods, and a replica calls other deployments through its handles, over a
 * direct link to the callee's replica (replica/direct-handles.ts) or relayed by the parent (handle.ts).
 *
 * Ids are per sender: `call`/`stream-open` carry the caller's id; the answers (`accepted`, `rejected`,
 * `result`, `error`, `stream-item`, `stream-end`) refer to the receiver's own call; `credit` and `cancel`
 * refer to a call the receiver is serving. Control RPC (initialize, health, stats, drain) is comlink,
 * wrapped in `comlink` messages so that it shares the one channel.
 */
import type { CostOptions } from '../contract/deployment-options.js';
import type { MessagePort } from 'node:worker_threads';
import type { RequestEvent } from '../runtime-events.js';
import type { WireError } from './wire-error.js';

export { errorFromWire, errorToWire, type WireError } from './wire-error.js';

/** Which deployment a relayed handle call is for. */
export interface HandleTarget {
  app: string;
  deployment: string;
}

interface CallFields {
  id: number;
  /** Set when a replica calls another deployment through the parent. */
  target?: HandleTarget;
  method: string;
  args: unknown[];
  requestId: string;
  /** CallOptions.routingKey, for calls a replica relays through the parent. */
  routingKey?: string;
  /** CallOptions.multiplexedModelId: for the parent's router on a relayed call, for the replica's getMultiplexedModelId(). */
  multiplexedModelId?: string;
}

export type CallMessage = CallFields & { type: 'call' };
/** credit: how many items the producer may send before the next `credit` message. */
export type StreamOpenMessage = CallFields & { type: 'stream-open'; credit: number };

export type ProtocolMessage =
  | CallMessage
  | StreamOpenMessage
  | { type: 'accepted'; id: number }
  /** The replica is at maxOngoingRequests or draining: the caller's router tries again elsewhere. */
  | { type: 'rejected'; id: number; reason: 'full' | 'draining' }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: WireError }
  | { type: 'stream-item'; id: number; value: unknown }
  | { type: 'stream-end'; id: number }
  | { type: 'credit'; id: number; n: number }
  | { type: 'cancel'; id: number }
  | { type: 'comlink'; message: unknown }
  /** Several of the messages above, sent in one turn of the sender's event loop (outbox.ts), in order. */
  | { type: 'batch'; messages: ProtocolMessage[] }
  /**
   * Direct links between replicas, between a replica and the link broker of its parent (link-broker.ts);
   * not a call. id is always 0, which names no call (ids start at 1), so code that routes messages by id
   * (the cluster's actor bridge) passes it by.
   */
  | { type: 'link'; id: number; link: LinkMessage };

/** How a caller replica reaches one callee replica without its parent. */
export type LinkVia =
  /** Both are worker threads of one process: this end of a MessageChannel whose other end the callee holds. */
  | { kind: 'port'; port: MessagePort }
  /** A child process on either side: the callee's socket (socket-channel.ts) and the token it asks for. */
  | { kind: 'socket'; address: string; token: string };

/** A callee replica in a pushed set; `via` only when the caller has no link to it yet. */
export interface LinkedReplica {
  id: string;
  maxOngoing: number;
  via?: LinkVia;
}

/**
 * The replica-set push (Ray Serve's long-poll host, pushed on change instead of polled) and link set-up:
 * - subscribe (replica → parent): the replica holds a handle to `target`; push its replica set.
 * - replicas (parent → caller): the set now, or null: call through the parent (no replica, or one the
 *   caller cannot reach directly, e.g. on another node, or the deployment is unavailable).
 * - gone (parent → caller): that callee replica exited; close the link (its pending calls fail).
 * - accept (parent → callee, thread to thread): serve calls arriving on `port` from replica `from`.
 * - requests (caller → parent): request events of direct calls, for the parent's metrics.
 */
export type LinkMessage =
  | { kind: 'subscribe'; target: HandleTarget }
  | {
      kind: 'replicas';
      target: HandleTarget;
      routing: 'pow2' | 'prefix-aware';
      replicas: LinkedReplica[] | null;
      /** The target's class derives multiplexed model ids (only the parent can): relay its calls. */
      derivesModelId?: boolean;
    }
  | { kind: 'gone'; id: string }
  | { kind: 'accept'; from: string; port: MessagePort }
  | { kind: 'requests'; events: RequestEvent[] };

/**
 * A batch whose string stream items travel as parallel arrays and one joined string (outbox.ts): the
 * structured clone costs per object, so 64 streams' tokens cost a handful of objects instead of 64.
 * Item k is `stream-item { id: ids[k], value: text.slice(ends[k - 1] ?? 0, ends[k]) }`; `others[j]` sits at
 * position `at[j]` of the batch's order. Only channels see it: they unpack it into a plain `batch` on
 * arrival (channel.ts), so RpcPeer and the cluster's actor bridge only ever see ProtocolMessages.
 */
export interface PackedBatchMessage {
  type: 'packed-batch';
  ids: number[];
  ends: number[];
  text: string;
  others: ProtocolMessage[];
  at: number[];
}

export type ProtocolMessageType = ProtocolMessage['type'];

/** What a replica is started with (sent through control.initialize). */
export interface ReplicaInit {
  replicaId: string;
  app: string;
  /** Name in the app graph (may be suffixed, e.g. Small_1). */
  deployment: string;
  /** Name the class registered under with @deployment. */
  className: string;
  /** Absolute path or file URL of the user's module. */
  modulePath: string;
  /** Constructor arguments; bound deployments are handle descriptors (application.ts). */
  args: unknown[];
  maxOngoingRequests: number;
  userConfig?: unknown;
  /** GPU ids given by placement (also in CUDA_VISIBLE_DEVICES for process replicas). */
  gpuIds: number[];
  /** The deployment's cost prices, when it has some (ReplicaContext.cost). */
  cost?: CostOptions;
}
