/**
 * Every message that crosses a thread or process boundary between the controller's process and a
 * replica. Both directions use the same data-plane messages: the parent calls replica methods, and a
 * replica calls other deployments through its handles, relayed by the parent (see handle.ts).
 *
 * Ids are per sender: `call`/`stream-open` carry the caller's id; the answers (`accepted`, `rejected`,
 * `result`, `error`, `stream-item`, `stream-end`) refer to the receiver's own call; `credit` and `cancel`
 * refer to a call the receiver is serving. Control RPC (initialize, health, stats, drain) is comlink,
 * wrapped in `comlink` messages so that it shares the one channel.
 */
import { errorClasses, FlotillaError, UserCodeError } from '../errors.js';

/** Which deployment a relayed handle call is for. */
export interface HandleTarget {
  app: string;
  deployment: string;
}

/** An error as it crosses a boundary; rebuilt as the same FlotillaError subclass by errorFromWire. */
export interface WireError {
  name: string;
  code: string;
  message: string;
  stack?: string;
  data?: Record<string, unknown>;
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
  | { type: 'batch'; messages: ProtocolMessage[] };

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
}

export function errorToWire(err: unknown): WireError {
  if (err instanceof FlotillaError) {
    return { name: err.name, code: err.code, message: err.message, stack: err.stack, data: err.data };
  }
  if (err instanceof Error) {
    return {
      name: 'UserCodeError',
      code: 'USER_ERROR',
      message: err.message,
      stack: err.stack,
      data: { originalName: err.name },
    };
  }
  return { name: 'UserCodeError', code: 'USER_ERROR', message: String(err) };
}

export function errorFromWire(wire: WireError): FlotillaError {
  const Cls = (errorClasses as Record<string, typeof FlotillaError>)[wire.name] ?? UserCodeError;
  const err = new Cls(wire.message, wire.data);
  if (wire.stack) err.stack = wire.stack;
  return err;
}
