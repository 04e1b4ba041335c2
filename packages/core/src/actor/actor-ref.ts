/**
 * ActorRef: the one interface to a replica, whatever carries it (worker thread, child process or
 * remote node: remote-actor.ts). ChannelActor implements it over any Channel; the transports only
 * differ in how they start the actor and what they kill.
 */
import * as Comlink from 'comlink';
import { comlinkEndpoint, type Channel } from './channel.js';
import { RpcPeer, type CallServer } from './rpc-peer.js';
import type { MessagePort } from 'node:worker_threads';
import type { LinkMessage, ReplicaInit } from './protocol.js';
import type { Cancellation } from './cancellation.js';
import type { MethodKind } from '../contract/routes.js';
import type { MultiplexedReport } from '../multiplexed.js';

export interface ActorCallOptions {
  requestId: string;
  /** With `cancel`, read only if cancel is absent (see cancellation.ts). */
  signal?: AbortSignal;
  cancel?: Cancellation;
  /** Sent with the call: the replica's getMultiplexedModelId(). */
  multiplexedModelId?: string;
}

/** What a replica reports once its user class is constructed. */
export interface ReplicaInfo {
  methods: Record<string, MethodKind>;
  rawHttp: boolean;
  /** The class's `static handlesMalformedJson` (see RouteInfo). */
  handlesMalformedJson?: boolean;
  /** The class's `static internalMethods` (see RouteInfo); absent when none. */
  internalMethods?: string[];
  pid: number;
}

export interface ReplicaStats {
  /** Requests admitted and not finished. */
  ongoing: number;
  /** Sizes of @batch calls since the last stats() call, by method. */
  batches: { method: string; size: number }[];
  /** What the user's autoscalingMetrics() returned (finite numbers only); absent when it has none. */
  metrics?: Record<string, number>;
  /** The replica's @multiplexed models (multiplexed.ts); absent when its class has none in use. */
  models?: MultiplexedReport;
}

/** The replica's control surface, answered outside its request queue (comlink RPC). */
export interface ReplicaControl {
  initialize(init: ReplicaInit): Promise<ReplicaInfo>;
  /** Runs the user's checkHealth() if any; rejects when unhealthy. */
  checkHealth(): Promise<void>;
  /** Load report, polled every metricsIntervalS (also runs the user's autoscalingMetrics()). */
  stats(): Promise<ReplicaStats>;
  reconfigure(userConfig: unknown): Promise<void>;
  /** The user class's collectMetrics() (prom-client metric JSON), [] when it has none. */
  collectMetrics(): Promise<unknown[]>;
  /** Stops admitting requests and waits (at most timeoutMs) for the ongoing ones to finish. */
  drain(timeoutMs: number): Promise<void>;
  /**
   * Runs the user's `[Symbol.asyncDispose]()` or else `dispose()`, once, and stops admitting requests;
   * the controller calls it after drain() and before killing the actor. Resolves even when the user's
   * method throws (the error is written to stderr).
   */
  dispose(): Promise<void>;
  /**
   * Starts (once) the socket on which other replicas link to this one directly (socket-channel.ts);
   * the parent hands its address and token only to the callers it links.
   */
  listen(): Promise<{ address: string; token: string }>;
}

/** The side channel between a replica and the link broker (link-broker.ts): direct links' set-up. */
export interface ActorLinks {
  /** `transfer`: the MessagePorts `link` carries (thread actors only). */
  send(link: LinkMessage, transfer?: readonly MessagePort[]): boolean;
  /** One listener: the link broker's. */
  onMessage(listener: (link: LinkMessage) => void): void;
}

export interface ActorRef {
  readonly id: string;
  readonly kind: 'thread' | 'process' | 'remote';
  readonly pid: number | undefined;
  /** The cluster node it runs on; absent for actors of this process's node. */
  readonly node?: string;
  readonly control: Comlink.Remote<ReplicaControl>;
  /** Settles once when the actor is gone, with the reason. */
  readonly exited: Promise<string>;
  /** Aborted (reason: the exit reason) when the actor is gone; listeners can be removed, unlike exited's. */
  readonly exitSignal: AbortSignal;
  readonly alive: boolean;
  /** Direct links' side channel: thread and process actors of this node; absent for remote ones. */
  readonly links?: ActorLinks;
  call(method: string, args: unknown[], opts: ActorCallOptions): Promise<unknown>;
  stream(method: string, args: unknown[], opts: ActorCallOptions): AsyncIterable<unknown>;
  cancel(requestId: string): void;
  kill(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** An ActorRef over a Channel; `server` answers the replica's own handle calls (relayed through us). */
export class ChannelActor implements ActorRef {
  readonly control: Comlink.Remote<ReplicaControl>;
  readonly exited: Promise<string>;
  readonly exitSignal: AbortSignal;
  alive = true;
  readonly links: ActorLinks | undefined;
  private readonly peer: RpcPeer;
  private linkListener: ((link: LinkMessage) => void) | undefined;

  constructor(
    readonly id: string,
    readonly kind: 'thread' | 'process' | 'remote',
    readonly pid: number | undefined,
    channel: Channel,
    server: CallServer,
    private readonly terminate: () => Promise<void>,
  ) {
    this.peer = new RpcPeer(channel, server, (link) => this.linkListener?.(link));
    this.links =
      kind === 'remote'
        ? undefined
        : {
            send: (link, transfer) => this.peer.sendLink(link, transfer),
            onMessage: (listener) => {
              this.linkListener = listener;
            },
          };
    this.control = Comlink.wrap<ReplicaControl>(comlinkEndpoint(channel, () => this.peer.flush()));
    const exit = new AbortController();
    this.exitSignal = exit.signal;
    this.exited = new Promise((resolve) =>
      channel.onClose((reason) => {
        this.alive = false;
        exit.abort(reason);
        resolve(reason);
      }),
    );
  }

  call(method: string, args: unknown[], opts: ActorCallOptions): Promise<unknown> {
    return this.peer.call(method, args, opts);
  }

  stream(method: string, args: unknown[], opts: ActorCallOptions): AsyncIterable<unknown> {
    return this.peer.stream(method, args, opts);
  }

  cancel(requestId: string): void {
    this.peer.cancelRequest(requestId);
  }

  async kill(): Promise<void> {
    if (this.alive) await this.terminate();
    await this.exited;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.kill();
  }
}
