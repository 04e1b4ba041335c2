/**
 * The replica runtime inside a worker thread or child process: constructs the user's class, admits
 * requests up to maxOngoingRequests (rejecting the rest so the caller's router tries elsewhere), and
 * answers control calls (health, stats, drain, dispose) outside the request queue.
 */
import { pathToFileURL } from 'node:url';
import { findRegisteredDeployment } from '../deployment.js';
import { takeBatchSizes } from '../batch.js';
import { createHandle, isHandleDescriptor } from '../handle.js';
import { endRequest, getRequestContext, setReplicaContext, type RequestContext } from '../request-context.js';
import { clearMultiplexedModels, multiplexedReport } from '../multiplexed.js';
import { UserCallable } from './user-callable.js';
import { TaskPool } from './task-pool.js';
import { DirectHandles } from './direct-handles.js';
import { RpcPeer, type CallServer, type IncomingCall } from '../actor/rpc-peer.js';
import { PortChannel, type Channel } from '../actor/channel.js';
import { listenForLinks, type LinkListener } from '../actor/socket-channel.js';
import { Cancellation } from '../actor/cancellation.js';
import type { ReplicaControl, ReplicaInfo, ReplicaStats } from '../actor/actor-ref.js';
import type { LinkMessage, ReplicaInit } from '../actor/protocol.js';

export class Replica implements CallServer, ReplicaControl {
  /** Calls' AbortSignals are built only when user code reads ctx.signal (see actor/cancellation.ts). */
  readonly lazySignal = true;
  private callable: UserCallable | TaskPool | undefined;
  private init: ReplicaInit | undefined;
  private ongoing = 0;
  private draining = false;
  private drained: (() => void) | undefined;
  private peer: RpcPeer | undefined;
  private disposed: Promise<void> | undefined;
  /** Our handles' calls: direct to the callees' replicas where linked, else relayed by the parent. */
  private direct: DirectHandles | undefined;
  /** Peers of the callers linked to us directly (their calls count against maxOngoingRequests too). */
  private readonly linked = new Set<RpcPeer>();
  private listener: Promise<LinkListener> | undefined;
  /** The context each running call's user code sees, ended on release (unpins its multiplexed models). */
  private readonly contexts = new WeakMap<IncomingCall, RequestContext>();

  /** The peer to the parent: our answers to its calls, our handle calls it relays, link messages. */
  attach(peer: RpcPeer): void {
    this.peer = peer;
  }

  /** A link message from the parent (LinkMessage): a caller's port to serve, or our callees' sets. */
  onLink(link: LinkMessage): void {
    if (link.kind === 'accept') this.acceptLink(new PortChannel(link.port, `link from replica ${link.from} closed`));
    else this.direct?.onLink(link);
  }

  /** Starts the socket other replicas link to (once); the parent passes its address on to callers. */
  async listen(): Promise<{ address: string; token: string }> {
    this.listener ??= listenForLinks(`link to replica ${this.init?.replicaId}`, (channel) => this.acceptLink(channel));
    const { address, token } = await this.listener;
    return { address, token };
  }

  /** Sends every peer's held messages (before a control answer, which must not overtake results). */
  flush(): void {
    this.peer?.flush();
    for (const p of this.linked) p.flush();
  }

  /** Serves the calls of a caller replica linked to us directly, as if they came from the parent. */
  private acceptLink(channel: Channel): void {
    const peer = new RpcPeer(channel, this);
    this.linked.add(peer);
    channel.onClose(() => this.linked.delete(peer));
  }

  async initialize(init: ReplicaInit): Promise<ReplicaInfo> {
    this.init = init;
    setReplicaContext({
      replicaId: init.replicaId,
      app: init.app,
      deployment: init.deployment,
      gpuIds: init.gpuIds,
      ...(init.cost ? { cost: init.cost } : {}),
    });
    const where = `deployment ${init.deployment} (${init.modulePath})`;
    try {
      await import(pathToFileURL(init.modulePath).href);
    } catch (err) {
      throw new Error(`${where}: cannot load the module: ${describe(err)}`);
    }
    const definition = findRegisteredDeployment(init.className);
    if (!definition) throw new Error(`${where}: no @deployment class named '${init.className}' in the module`);
    if (definition.options.pool) {
      const { replicaId, app, deployment, className, modulePath, gpuIds } = init;
      this.callable = new TaskPool(
        definition.cls,
        { replicaId, app, deployment, className, modulePath, args: init.args, gpuIds },
        definition.options.pool,
      );
      return { methods: this.callable.methods, rawHttp: false, pid: process.pid };
    }
    const args = init.args.map((a) => this.rebuildHandles(a));
    let instance: object;
    try {
      instance = new (definition.cls as new (...a: unknown[]) => object)(...args);
    } catch (err) {
      throw new Error(`${where}: constructor threw: ${describe(err)}`);
    }
    this.callable = new UserCallable(instance, init.deployment);
    if (init.userConfig !== undefined) await this.reconfigure(init.userConfig);
    const info: ReplicaInfo = { methods: this.callable.methods, rawHttp: this.callable.rawHttp, pid: process.pid };
    if (this.callable.rawHttp && this.callable.handlesMalformedJson) info.handlesMalformedJson = true;
    if (this.callable.internalMethods.length > 0) info.internalMethods = this.callable.internalMethods;
    return info;
  }

  async checkHealth(): Promise<void> {
    await this.callable?.checkHealth();
  }

  async stats(): Promise<ReplicaStats> {
    const stats: ReplicaStats = { ongoing: this.ongoing, batches: takeBatchSizes() };
    const metrics = await this.callable?.autoscalingMetrics();
    if (metrics) stats.metrics = metrics;
    const models = multiplexedReport();
    if (models) stats.models = models;
    return stats;
  }

  /** Metrics the user class exposes (collectMetrics()), read at scrape time outside the request queue. */
  async collectMetrics(): Promise<unknown[]> {
    return (await this.callable?.collectMetrics()) ?? [];
  }

  async reconfigure(userConfig: unknown): Promise<void> {
    try {
      await this.callable?.reconfigure(userConfig);
    } catch (err) {
      throw new Error(`deployment ${this.init?.deployment}: reconfigure threw: ${describe(err)}`);
    }
  }

  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    if (this.ongoing === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * The user's destructor, once: the controller calls it when the replica stops (after drain(), before
   * the kill), so that native memory, sockets and timers are released by the code that owns them rather
   * than left to the thread's or process's end. Requests still running may fail as it tears down.
   */
  dispose(): Promise<void> {
    this.draining = true;
    this.disposed ??= (async () => {
      // No new links; those open stay until the actor ends (their calls were drained).
      void this.listener?.then((l) => l.close()).catch(() => undefined);
      try {
        await this.callable?.dispose();
      } catch (err) {
        process.stderr.write(`[flotilla] deployment ${this.init?.deployment}: dispose threw: ${describe(err)}\n`);
      }
      await clearMultiplexedModels();
    })();
    return this.disposed;
  }

  admit(_call: IncomingCall): 'full' | 'draining' | null {
    if (this.draining || !this.callable) return 'draining';
    if (this.ongoing >= this.init!.maxOngoingRequests) return 'full';
    this.ongoing++;
    return null;
  }

  release(call: IncomingCall): void {
    const ctx = this.contexts.get(call);
    if (ctx) endRequest(ctx);
    this.ongoing--;
    if (this.draining && this.ongoing === 0) this.drained?.();
  }

  unary(call: IncomingCall): Promise<unknown> {
    return this.callable!.unary(call.method, call.args, this.context(call));
  }

  stream(call: IncomingCall): AsyncIterable<unknown> {
    return this.callable!.stream(call.method, call.args, this.context(call));
  }

  private context(call: IncomingCall): RequestContext {
    const ctx = new CallContext(
      call.requestId,
      call.cancel ?? new Cancellation(),
      this.init!.app,
      this.init!.deployment,
      call.method,
      call.multiplexedModelId,
    );
    this.contexts.set(call, ctx);
    return ctx;
  }

  private rebuildHandles(value: unknown): unknown {
    if (isHandleDescriptor(value)) {
      this.direct ??= new DirectHandles(this.peer!);
      this.direct.subscribe(value.$flotillaHandle);
      return createHandle(value.$flotillaHandle, this.direct, {}, () => getRequestContext());
    }
    if (Array.isArray(value)) return value.map((v) => this.rebuildHandles(v));
    if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.rebuildHandles(v)]));
    }
    return value;
  }
}

/**
 * The context user code sees: its AbortSignal is built on first read. Handles made in the replica read
 * `cancel` (resolveCallOptions), so nested calls are cancelled with their parent without building one.
 */
class CallContext implements RequestContext {
  constructor(
    readonly requestId: string,
    readonly cancel: Cancellation,
    readonly app: string,
    readonly deployment: string,
    readonly method: string,
    readonly multiplexedModelId: string | undefined,
  ) {}

  get signal(): AbortSignal {
    return this.cancel.signal;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
