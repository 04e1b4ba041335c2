/**
 * Pre-started worker threads for replicas about to be added (Ray's raylet keeps prestarted workers
 * for the same reason). Booting a worker (registering tsx, loading the replica runtime) costs about a
 * second on an idle machine and several on a busy one, while initializing a booted worker with the
 * user's module is tens of milliseconds. The controller warms workers while an upscale waits out its
 * upscaleDelayS, so that the boot overlaps the delay instead of following the decision; the policy and
 * its timing are unchanged. A worker knows nothing of its deployment until initialize(), so any warm
 * worker can become any thread replica: take() names it and binds it to the deployment's relay.
 *
 * Warm workers that are not taken within `idleMs` are stopped (the upscale did not happen).
 */
import type * as Comlink from 'comlink';
import type { ActorCallOptions, ActorRef, ReplicaControl } from '../actor/actor-ref.js';
import type { CallServer, IncomingCall } from '../actor/rpc-peer.js';

export interface WarmPoolOptions {
  /** Starts a thread actor whose handle calls go to `server`. */
  create(id: string, server: CallServer): ActorRef;
  /** Most workers kept warm at once. Default: 4. */
  max?: number;
  /** A warm worker not taken within this long is stopped, in ms. Default: 30000. */
  idleMs?: number;
}

interface Spare {
  actor: ActorRef;
  relay: { target: CallServer | undefined };
  warmedAtMs: number;
}

export class WarmPool {
  private readonly spares: Spare[] = [];
  private seq = 0;
  private closed = false;

  constructor(private readonly options: WarmPoolOptions) {}

  get size(): number {
    return this.spares.length;
  }

  /** Keeps at least `n` workers warm (capped at `max`); each warmed one counts from now for idleMs. */
  warm(n: number, nowMs = Date.now()): void {
    if (this.closed) return;
    const want = Math.min(n, this.options.max ?? 4);
    for (const s of this.spares) s.warmedAtMs = nowMs;
    while (this.spares.length < want) {
      const relay: Spare['relay'] = { target: undefined };
      const actor = this.options.create(`warm-${++this.seq}`, relayTo(relay));
      const spare = { actor, relay, warmedAtMs: nowMs };
      this.spares.push(spare);
      // A worker that dies while warm is dropped (the next replica starts cold).
      void actor.exited.then(() => this.drop(spare));
    }
  }

  /** A warm worker named `id` whose handle calls go to `server`, or undefined when none is warm. */
  take(id: string, server: CallServer): ActorRef | undefined {
    const spare = this.spares.shift();
    if (!spare) return undefined;
    spare.relay.target = server;
    return renamed(spare.actor, id);
  }

  /** Stops workers warm for longer than idleMs. */
  expire(nowMs = Date.now()): void {
    const idleMs = this.options.idleMs ?? 30_000;
    for (const s of [...this.spares]) {
      if (nowMs - s.warmedAtMs >= idleMs) {
        this.drop(s);
        void s.actor.kill();
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = this.spares.splice(0);
    await Promise.all(all.map((s) => s.actor.kill()));
  }

  private drop(spare: Spare): void {
    const i = this.spares.indexOf(spare);
    if (i >= 0) this.spares.splice(i, 1);
  }
}

/** A CallServer that serves through whatever `relay.target` is once the worker becomes a replica. */
function relayTo(relay: { target: CallServer | undefined }): CallServer {
  const target = (): CallServer => {
    if (!relay.target) throw new Error('a warm worker made a handle call before it became a replica');
    return relay.target;
  };
  return {
    admit: (call: IncomingCall) => target().admit(call),
    unary: (call, signal) => target().unary(call, signal),
    stream: (call, signal) => target().stream(call, signal),
    release: (call) => target().release(call),
  };
}

/** The same actor under the replica's id (the warm one's id only named its worker thread). */
function renamed(actor: ActorRef, id: string): ActorRef {
  return {
    id,
    kind: actor.kind,
    node: actor.node,
    get pid() {
      return actor.pid;
    },
    get alive() {
      return actor.alive;
    },
    control: actor.control as Comlink.Remote<ReplicaControl>,
    exited: actor.exited,
    exitSignal: actor.exitSignal,
    links: actor.links,
    call: (method: string, args: unknown[], opts: ActorCallOptions) => actor.call(method, args, opts),
    stream: (method: string, args: unknown[], opts: ActorCallOptions) => actor.stream(method, args, opts),
    cancel: (requestId: string) => actor.cancel(requestId),
    kill: () => actor.kill(),
    [Symbol.asyncDispose]: () => actor.kill(),
  };
}
