/**
 * The parent's side of direct links between replicas (replica/direct-handles.ts has the caller's side):
 * Ray Serve's long-poll host, pushing each change instead of answering polls.
 *
 * A replica subscribes to each deployment it holds a handle to. Whenever that deployment's RUNNING
 * replicas change (the controller publishes them to the routers and here), every subscriber gets the
 * whole set, and with each replica new to it, the link to use:
 * - thread → thread: a MessageChannel made here, one port transferred to each (the callee gets 'accept');
 * - a child process on either side: the callee's socket (it listens on the first such request; its
 *   address and token go only to the callers linked to it).
 * A set with a replica that cannot be linked (on another node: its channel is the agent's stream) is
 * pushed as null, and the caller relays through us as before; so is an empty or unavailable one.
 * When a callee exits, its callers are told ('gone'), so that calls on its link fail even if the link
 * itself did not notice.
 *
 * Pushes to one subscriber for one target never overlap; a change during a push is pushed after it.
 */
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { ActorRef } from './actor-ref.js';
import type { HandleTarget, LinkMessage, LinkedReplica } from './protocol.js';
import type { RequestEvent } from '../runtime-events.js';

/** A RUNNING replica as the controller publishes it (actor: its ActorRef). */
export interface PublishedReplica {
  id: string;
  actor: unknown;
  maxOngoing: number;
}

export interface LinkBrokerOptions {
  /** False: no replica set is pushed, every handle call is relayed. */
  enabled: boolean;
  /** A deployment's routing policy (the callers' routers use the same), undefined when it does not exist. */
  routing(app: string, deployment: string): 'pow2' | 'prefix-aware' | undefined;
  /** Whether the deployment's class derives multiplexed model ids from calls (static multiplexedModelId). Default: never. */
  derivesModelId?(app: string, deployment: string): boolean;
  /** Request events of direct calls, reported by the callers (for metrics). */
  onRequest(event: RequestEvent): void;
  /** How long a callee has to start listening. Default: 10000. */
  listenTimeoutMs?: number;
}

/** What a test or the status can see of the links. */
export interface LinkStats {
  /** Links handed out (caller → callee pairs), counting those of callers and callees still alive. */
  links: number;
  /** Replica sets pushed. */
  pushes: number;
  /** (caller replica, target deployment) subscriptions. */
  subscriptions: number;
}

interface Subscription {
  target: HandleTarget;
  pushing: boolean;
  again: boolean;
}

interface Subscriber {
  actor: ActorRef & { links: NonNullable<ActorRef['links']> };
  subscriptions: Map<string, Subscription>;
  /** Callee replica ids this caller holds a link to. */
  linked: Set<string>;
  gone: boolean;
}

export class LinkBroker {
  private readonly subscribers = new Set<Subscriber>();
  private readonly latest = new Map<string, { running: PublishedReplica[]; unavailable?: string }>();
  /** Callees' sockets by replica id, once asked for. */
  private readonly listening = new Map<string, Promise<{ address: string; token: string }>>();
  private pushes = 0;

  constructor(private readonly options: LinkBrokerOptions) {}

  /** Every actor this process starts: hears its link messages, and tells its callers when it exits. */
  attach(actor: ActorRef): void {
    const links = actor.links;
    if (!links) return;
    const sub: Subscriber = {
      actor: actor as Subscriber['actor'],
      subscriptions: new Map(),
      linked: new Set(),
      gone: false,
    };
    this.subscribers.add(sub);
    links.onMessage((link) => this.onMessage(sub, link));
    void actor.exited.then(() => {
      sub.gone = true;
      this.subscribers.delete(sub);
      this.listening.delete(actor.id);
      for (const s of this.subscribers)
        if (s.linked.delete(actor.id)) s.actor.links.send({ kind: 'gone', id: actor.id });
    });
  }

  /** A deployment's RUNNING replicas changed (or it became unavailable: `unavailable` says why). */
  publish(app: string, deployment: string, running: PublishedReplica[], unavailable?: string): void {
    const key = keyOf({ app, deployment });
    this.latest.set(key, { running, unavailable });
    for (const sub of this.subscribers) if (sub.subscriptions.has(key)) this.push(sub, key);
  }

  stats(): LinkStats {
    let links = 0;
    let subscriptions = 0;
    for (const s of this.subscribers) {
      links += s.linked.size;
      subscriptions += s.subscriptions.size;
    }
    return { links, pushes: this.pushes, subscriptions };
  }

  private onMessage(sub: Subscriber, link: LinkMessage): void {
    if (link.kind === 'requests') {
      for (const e of link.events) this.options.onRequest(e);
    } else if (link.kind === 'subscribe' && this.options.enabled) {
      const key = keyOf(link.target);
      if (sub.subscriptions.has(key)) return;
      sub.subscriptions.set(key, {
        target: { app: link.target.app, deployment: link.target.deployment },
        pushing: false,
        again: false,
      });
      this.push(sub, key);
    }
  }

  private push(sub: Subscriber, key: string): void {
    const s = sub.subscriptions.get(key)!;
    if (s.pushing) {
      s.again = true;
      return;
    }
    s.pushing = true;
    void (async () => {
      try {
        do {
          s.again = false;
          await this.pushNow(sub, s.target, key);
        } while (s.again && !sub.gone);
      } finally {
        s.pushing = false;
      }
    })().catch((err) => process.stderr.write(`[flotilla] replica set push failed: ${(err as Error).message}\n`));
  }

  private async pushNow(sub: Subscriber, target: HandleTarget, key: string): Promise<void> {
    const routing = this.options.routing(target.app, target.deployment) ?? 'pow2';
    const transfer: MessagePort[] = [];
    const replicas = await this.linksFor(sub, this.latest.get(key), transfer);
    if (sub.gone) return;
    const link: LinkMessage = { kind: 'replicas', target, routing, replicas };
    if (this.options.derivesModelId?.(target.app, target.deployment)) link.derivesModelId = true;
    sub.actor.links.send(link, transfer.length > 0 ? transfer : undefined);
    this.pushes++;
  }

  /** The set to push, with new links made (their caller ends in `transfer`); null: relay instead. */
  private async linksFor(
    sub: Subscriber,
    published: { running: PublishedReplica[]; unavailable?: string } | undefined,
    transfer: MessagePort[],
  ): Promise<LinkedReplica[] | null> {
    if (!published || published.unavailable || published.running.length === 0) return null;
    const callees = published.running.map((r) => ({ r, actor: r.actor as ActorRef }));
    if (!callees.every((c) => linkable(c.actor))) return null;
    const caller = sub.actor;
    const viaPort = (c: ActorRef) => caller.kind === 'thread' && c.kind === 'thread';
    let sockets: ({ address: string; token: string } | undefined)[];
    try {
      sockets = await Promise.all(
        callees.map((c) => (sub.linked.has(c.r.id) || viaPort(c.actor) ? undefined : this.listenOf(c.actor))),
      );
    } catch {
      return null;
    }
    const replicas: LinkedReplica[] = [];
    callees.forEach(({ r, actor }, i) => {
      const entry: LinkedReplica = { id: r.id, maxOngoing: r.maxOngoing };
      if (!sub.linked.has(r.id)) {
        const socket = sockets[i];
        if (socket) entry.via = { kind: 'socket', address: socket.address, token: socket.token };
        else {
          const { port1, port2 } = new MessageChannel();
          if (!actor.links!.send({ kind: 'accept', from: caller.id, port: port2 }, [port2])) return; // exiting
          entry.via = { kind: 'port', port: port1 };
          transfer.push(port1);
        }
        sub.linked.add(r.id);
      }
      replicas.push(entry);
    });
    return replicas.length > 0 ? replicas : null;
  }

  private listenOf(callee: ActorRef): Promise<{ address: string; token: string }> {
    let p = this.listening.get(callee.id);
    if (!p) {
      p = withTimeout(callee, callee.control.listen(), this.options.listenTimeoutMs ?? 10_000);
      this.listening.set(callee.id, p);
      p.catch(() => {
        if (this.listening.get(callee.id) === p) this.listening.delete(callee.id);
      });
    }
    return p;
  }
}

function linkable(actor: ActorRef | undefined): boolean {
  return (
    actor !== undefined &&
    actor.links !== undefined &&
    (actor.kind === 'thread' || actor.kind === 'process') &&
    actor.alive !== false
  );
}

function keyOf(target: HandleTarget): string {
  return `${target.app}\u0000${target.deployment}`;
}

/** `p`, unless the actor exits or `ms` passes first. */
function withTimeout<T>(actor: ActorRef, p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const fail = () => done(() => reject(new Error(`replica ${actor.id} did not start listening`)));
    const timer = setTimeout(fail, ms);
    const done = (settle: () => void) => {
      clearTimeout(timer);
      actor.exitSignal.removeEventListener('abort', fail);
      settle();
    };
    if (actor.exitSignal.aborted) return fail();
    actor.exitSignal.addEventListener('abort', fail, { once: true });
    p.then(
      (v) => done(() => resolve(v)),
      (err) => done(() => reject(err)),
    );
  });
}
