/**
 * Handle calls from a replica straight to the callee's replicas, as Ray Serve's replicas call each
 * other, instead of through the parent: two thread or process crossings per call instead of four, and
 * none on the parent's thread (which also runs the proxies and the controller).
 *
 * The parent's link broker (actor/link-broker.ts) pushes each target's replica set when it changes
 * (LinkMessage 'replicas'), with the link to each replica new to this caller: a MessagePort when both
 * are threads of one process, else the callee's socket (actor/socket-channel.ts). A Router per target
 * (router/router.ts, the class the parent's routers are) picks among the linked replicas with the same
 * policy, retries a call that a replica refused or died before accepting, and fails an accepted call
 * whose callee died with ActorDiedError: the link's close fails it, as the actor channel's does.
 *
 * The relay through the parent stays, with its semantics, wherever a call does not go direct:
 * - until a set has arrived, and while it is null (no replica RUNNING, the deployment unavailable, or a
 *   replica that cannot be linked, e.g. on another node),
 * - when no linked replica has a free slot now: the call then waits in the parent's router, where
 *   maxQueuedRequests applies per calling deployment and autoscaling sees it queued,
 * - for a 'prefix-aware' target called without a routingKey of its own: its key function is a static
 *   of the deployment class, which only the parent has loaded;
 * - for a call with a multiplexedModelId, or to a class that derives one (static multiplexedModelId): the
 *   replicas' loaded-model reports and the class's function are in the parent.
 *
 * The parent's metrics still count direct calls: their request events ride to it with the replica's
 * next message (Outbox.ride), at no channel message of their own while traffic flows.
 */
import { BackPressureError } from '../errors.js';
import { Router, type RoutedReplica } from '../router/router.js';
import { RuntimeEvents, type RequestEvent } from '../runtime-events.js';
import { PortChannel } from '../actor/channel.js';
import { SocketChannel } from '../actor/socket-channel.js';
import { RpcPeer, type OutgoingOptions } from '../actor/rpc-peer.js';
import type { HandleBackend, ResolvedCallOptions } from '../handle.js';
import type { HandleTarget, LinkMessage, LinkVia } from '../actor/protocol.js';

interface Link {
  channel: PortChannel | SocketChannel;
  actor: RoutedReplica['actor'];
}

interface TargetState {
  router: Router | undefined;
  routing: 'pow2' | 'prefix-aware';
  /** The target's class derives multiplexed model ids from calls: its calls are relayed. */
  derivesModelId?: boolean;
  /** A non-empty set, every replica of it linked: calls go direct. */
  direct: boolean;
}

/** Counters for tests and benchmarks. */
export interface DirectCallStats {
  /** Calls handed to a direct link (a retry on another replica counts again). */
  direct: number;
  /** Calls sent through the parent. */
  relayed: number;
}

export class DirectHandles implements HandleBackend {
  readonly stats: DirectCallStats = { direct: 0, relayed: 0 };
  private readonly targets = new Map<string, TargetState>();
  /** Open links by callee replica id. */
  private readonly links = new Map<string, Link>();
  /**
   * Options of the calls handed to a link. The local routers never queue (maxQueuedRequests 0), so a
   * BackPressureError for a call not in here means "no free replica now", not an answer: relay it.
   */
  private readonly dispatched = new WeakSet<object>();
  private readonly events = new RuntimeEvents();
  private pendingEvents: RequestEvent[] | undefined;

  /** `parent`: the replica's channel to its parent, for relayed calls and link messages. */
  constructor(private readonly parent: RpcPeer) {
    this.events.on('request', (e) => this.report(e));
  }

  /** Asks the parent for `target`'s replica set (once per target; calls are relayed until it arrives). */
  subscribe(target: HandleTarget): void {
    const key = keyOf(target);
    if (this.targets.has(key)) return;
    this.targets.set(key, { router: undefined, routing: 'pow2', direct: false });
    this.parent.sendLink({ kind: 'subscribe', target });
  }

  /** A link message from the parent: a new replica set, or a callee that is gone. */
  onLink(link: LinkMessage): void {
    if (link.kind === 'replicas') this.update(link);
    else if (link.kind === 'gone') this.links.get(link.id)?.channel.shutdown(`replica ${link.id} exited`);
  }

  call(target: HandleTarget, method: string, args: unknown[], opts: ResolvedCallOptions): Promise<unknown> {
    const t = this.directTarget(target, opts);
    return t ? this.callDirect(t.router!, target, method, args, opts) : this.relayCall(target, method, args, opts);
  }

  stream(target: HandleTarget, method: string, args: unknown[], opts: ResolvedCallOptions): AsyncIterable<unknown> {
    const t = this.directTarget(target, opts);
    return t ? this.streamDirect(t.router!, target, method, args, opts) : this.relayStream(target, method, args, opts);
  }

  private directTarget(target: HandleTarget, opts: ResolvedCallOptions): TargetState | undefined {
    const t = this.targets.get(keyOf(target));
    if (!t?.direct) return undefined;
    if (t.routing === 'prefix-aware' && opts.routingKey === undefined) return undefined;
    // The loaded-model reports reach the parent's routers only; a replica's own router would route blind.
    if (opts.multiplexedModelId !== undefined || t.derivesModelId) return undefined;
    return t;
  }

  private async callDirect(
    router: Router,
    target: HandleTarget,
    method: string,
    args: unknown[],
    opts: ResolvedCallOptions,
  ): Promise<unknown> {
    try {
      return await router.call(method, args, opts);
    } catch (err) {
      if (err instanceof BackPressureError && !this.dispatched.has(opts))
        return this.relayCall(target, method, args, opts);
      throw err;
    }
  }

  private async *streamDirect(
    router: Router,
    target: HandleTarget,
    method: string,
    args: unknown[],
    opts: ResolvedCallOptions,
  ): AsyncGenerator<unknown> {
    try {
      yield* router.stream(method, args, opts);
    } catch (err) {
      if (err instanceof BackPressureError && !this.dispatched.has(opts)) {
        yield* this.relayStream(target, method, args, opts);
        return;
      }
      throw err;
    }
  }

  private relayCall(target: HandleTarget, method: string, args: unknown[], opts: ResolvedCallOptions) {
    this.stats.relayed++;
    return this.parent.call(method, args, relayOptions(target, opts));
  }

  private relayStream(target: HandleTarget, method: string, args: unknown[], opts: ResolvedCallOptions) {
    this.stats.relayed++;
    return this.parent.stream(method, args, relayOptions(target, opts));
  }

  private update(link: Extract<LinkMessage, { kind: 'replicas' }>): void {
    const key = keyOf(link.target);
    let t = this.targets.get(key);
    if (!t) {
      t = { router: undefined, routing: link.routing, direct: false };
      this.targets.set(key, t);
    }
    const routed: RoutedReplica[] = [];
    let complete = link.replicas !== null;
    for (const r of link.replicas ?? []) {
      const l = r.via ? this.open(r.id, r.via) : this.links.get(r.id);
      if (!l || l.channel.closed) complete = false;
      else routed.push({ id: r.id, actor: l.actor, maxOngoing: r.maxOngoing });
    }
    if (!t.router || t.routing !== link.routing) {
      // Calls in flight on a previous router finish there.
      t.router = new Router({
        app: link.target.app,
        deployment: link.target.deployment,
        caller: 'replica',
        maxQueuedRequests: 0,
        routing: link.routing,
        events: this.events,
      });
      t.routing = link.routing;
    }
    t.router.setReplicas(routed);
    t.derivesModelId = link.derivesModelId === true;
    t.direct = complete && routed.length > 0;
  }

  private open(id: string, via: LinkVia): Link {
    this.links.get(id)?.channel.shutdown('replaced by a new link');
    const label = `link to replica ${id}`;
    const channel =
      via.kind === 'port'
        ? new PortChannel(via.port, `${label} closed`)
        : SocketChannel.connect(via.address, via.token, label);
    const peer = new RpcPeer(channel);
    const actor: RoutedReplica['actor'] = {
      call: (method, args, opts) => {
        this.dispatched.add(opts);
        this.stats.direct++;
        return peer.call(method, args, opts);
      },
      stream: (method, args, opts) => {
        this.dispatched.add(opts);
        this.stats.direct++;
        return peer.stream(method, args, opts);
      },
      // A link closes when its callee is gone (or the link broke): the router may then retry a stream
      // that yielded nothing, as it does when a replica's actor channel closes.
      get alive() {
        return !channel.closed;
      },
    } as RoutedReplica['actor'];
    const link = { channel, actor };
    this.links.set(id, link);
    channel.onClose(() => {
      if (this.links.get(id) === link) this.links.delete(id);
    });
    return link;
  }

  private report(e: RequestEvent): void {
    if (this.pendingEvents) {
      this.pendingEvents.push(e);
      return;
    }
    const events = [e];
    this.pendingEvents = events;
    this.parent.rideLink({ kind: 'requests', events }, () => {
      this.pendingEvents = undefined;
    });
  }
}

function keyOf(target: HandleTarget): string {
  return `${target.app}\u0000${target.deployment}`;
}

/**
 * Options of a relayed call: field by field, so that a lazily built `signal` is read only when there is no
 * `cancel` (spreading the options would build it).
 */
function relayOptions(target: HandleTarget, opts: ResolvedCallOptions): OutgoingOptions {
  const out: OutgoingOptions = { target, requestId: opts.requestId };
  if (opts.cancel) out.cancel = opts.cancel;
  else if (opts.signal) out.signal = opts.signal;
  if (opts.routingKey !== undefined) out.routingKey = opts.routingKey;
  if (opts.multiplexedModelId !== undefined) out.multiplexedModelId = opts.multiplexedModelId;
  return out;
}
