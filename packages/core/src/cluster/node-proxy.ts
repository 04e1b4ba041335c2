/**
 * The ingress side of an agent's own HTTP proxy (Ray Serve runs one proxy per node): an IngressTarget
 * whose handles send each request to the head over one ProxyChannel stream (protos/cluster.proto), where
 * the head's routers place it on a replica wherever it runs, this node's included. Routes and status
 * come from ProxyState, polled every interval.
 *
 * While the head is unreachable (it restarts, or the connection drops) the proxy keeps its last routes
 * and holds new requests, retrying them until the head is back or `holdMs` passes, so a short head
 * restart delays requests rather than failing them. A request the head had already accepted when the
 * connection broke fails with ActorDiedError (data.accepted: true): it may have run.
 *
 * `retryAfterHeadLoss` sends such a request again (to the next head: a restarted or newly elected one)
 * instead, up to 3 times: nothing is lost when the head dies, at the price of at-least-once delivery (the
 * replica may have run it; its agent cancelled it when the head was lost). Streams are sent again only if
 * nothing reached the client yet.
 *
 * With several heads (state in etcd) the client is a function: the agent's current head (the leader it
 * registered with), or, for a standby head's own proxies, the leader's. Requests held while the leader
 * changes go to the new one.
 */
import * as grpc from '@grpc/grpc-js';
import { RpcPeer, isRetryable } from '../actor/rpc-peer.js';
import { StreamChannel } from '../actor/stream-channel.js';
import { ActorDiedError, NotFoundError, UnavailableError } from '../errors.js';
import { createHandle, type DeploymentHandle, type HandleBackend, type ResolvedCallOptions } from '../handle.js';
import { NODE_ID_KEY, type ProxyStateReply } from './cluster-proto.js';
import type { HandleTarget } from '../actor/protocol.js';
import type { IngressTarget } from '../ingress/ingress-target.js';
import type { RouteInfo } from '../contract/routes.js';
import type { ServeStatus } from '../contract/status.js';

export interface NodeProxyTargetOptions {
  /** The cluster client (cluster-proto.ts's service) connected to the head, or the current one; undefined: none known yet. */
  client: ProxyClient | (() => ProxyClient | undefined);
  nodeId: string;
  /** How often routes and status are refreshed, in ms. Default: 1000. */
  pollMs?: number;
  /** How long a request waits for an unreachable head before failing with UnavailableError, in ms. Default: 60000. */
  holdMs?: number;
  /** Send again (up to 3 times) a request the head had accepted when its connection broke. Default: false. */
  retryAfterHeadLoss?: boolean;
  log?: (line: string) => void;
}

type ProxyClient = grpc.Client & Record<string, any>;

export class NodeProxyTarget implements IngressTarget {
  draining = false;
  private peer: RpcPeer | undefined;
  private channel: StreamChannel | undefined;
  /** The client the channel was opened on: a new head (another leader) gets a new channel. */
  private channelClient: ProxyClient | undefined;
  private routeList: RouteInfo[] = [];
  private lastStatus: ServeStatus = { startedAtMs: Date.now(), applications: [] };
  private readonly poller: NodeJS.Timeout;
  private reachable = false;

  constructor(private readonly options: NodeProxyTargetOptions) {
    this.poller = setInterval(() => this.poll(), options.pollMs ?? 1000);
    this.poll();
  }

  /** Resolves once the head has answered with its routes (or after `timeoutMs`, with false). */
  async ready(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.reachable && Date.now() < deadline) await sleep(50);
    return this.reachable;
  }

  routes(): RouteInfo[] {
    return this.routeList;
  }

  status(): ServeStatus {
    return this.lastStatus;
  }

  getHandle(app: string, deployment?: string): DeploymentHandle<any> {
    const route = this.routeList.find((r) => r.app === app);
    if (!route) throw new NotFoundError(`no application '${app}'`);
    const name = deployment ?? route.ingress;
    if (!route.deployments.includes(name)) throw new NotFoundError(`no deployment '${name}' in application '${app}'`);
    const backend: HandleBackend = {
      call: (t, method, args, opts) => this.call(t, method, args, opts),
      stream: (t, method, args, opts) => this.stream(t, method, args, opts),
    };
    return createHandle({ app, deployment: name }, backend);
  }

  close(): void {
    this.draining = true;
    clearInterval(this.poller);
    this.channel?.shutdown('the node proxy is closing');
  }

  private async call(t: HandleTarget, method: string, args: unknown[], opts: ResolvedCallOptions): Promise<unknown> {
    const deadline = Date.now() + (this.options.holdMs ?? 60_000);
    const cuts = { n: 0 };
    for (let attempt = 0; ; attempt++) {
      let channel: StreamChannel | undefined;
      try {
        const link = this.connection();
        channel = link.channel;
        return await link.peer.call(method, args, {
          target: t,
          requestId: opts.requestId,
          signal: opts.signal,
          routingKey: opts.routingKey,
          multiplexedModelId: opts.multiplexedModelId,
        });
      } catch (err) {
        await this.beforeRetry(err, channel, attempt, deadline, opts.signal, cuts);
      }
    }
  }

  private async *stream(
    t: HandleTarget,
    method: string,
    args: unknown[],
    opts: ResolvedCallOptions,
  ): AsyncGenerator<unknown> {
    const deadline = Date.now() + (this.options.holdMs ?? 60_000);
    const cuts = { n: 0 };
    for (let attempt = 0; ; attempt++) {
      let started = false;
      let channel: StreamChannel | undefined;
      try {
        const link = this.connection();
        channel = link.channel;
        for await (const item of link.peer.stream(method, args, {
          target: t,
          requestId: opts.requestId,
          signal: opts.signal,
          routingKey: opts.routingKey,
          multiplexedModelId: opts.multiplexedModelId,
        })) {
          started = true;
          yield item;
        }
        return;
      } catch (err) {
        if (started) throw linkError(err, channel);
        await this.beforeRetry(err, channel, attempt, deadline, opts.signal, cuts);
      }
    }
  }

  /** Rethrows what cannot be retried; otherwise waits a little (the head may be restarting). */
  private async beforeRetry(
    err: unknown,
    channel: StreamChannel | undefined,
    attempt: number,
    deadline: number,
    signal: AbortSignal | undefined,
    cuts: { n: number },
  ): Promise<void> {
    if (!(isRetryable(err) || this.cutByHeadLoss(err, channel, cuts)) || signal?.aborted) throw linkError(err, channel);
    if (Date.now() >= deadline) {
      throw new UnavailableError(
        `the head is unreachable from node ${this.options.nodeId}: ${(err as Error).message}`,
        { retryable: false },
      );
    }
    await sleep(Math.min(1000, 50 * 2 ** attempt));
  }

  /** A request the head had accepted when its connection broke, to send again (retryAfterHeadLoss). */
  private cutByHeadLoss(err: unknown, channel: StreamChannel | undefined, cuts: { n: number }): boolean {
    const cut =
      this.options.retryAfterHeadLoss === true &&
      cuts.n < 3 &&
      err instanceof ActorDiedError &&
      err.data?.accepted === true &&
      channel?.closed === true;
    if (cut) cuts.n++;
    return cut;
  }

  /** The peer over the current ProxyChannel, opening one when there is none (grpc connects lazily). */
  private connection(): { peer: RpcPeer; channel: StreamChannel } {
    const client = this.client();
    if (!client) throw new UnavailableError('no head leads yet', { retryable: true });
    if (this.peer && this.channel && !this.channel.closed && this.channelClient === client)
      return { peer: this.peer, channel: this.channel };
    // The previous head's channel (if still open) finishes what it carries and is left to close.
    const metadata = new grpc.Metadata();
    metadata.set(NODE_ID_KEY, this.options.nodeId);
    const channel = new StreamChannel('head', client.ProxyChannel(metadata));
    this.channel = channel;
    this.channelClient = client;
    this.peer = new RpcPeer(channel);
    channel.onClose((reason) => {
      if (this.channel !== channel) return;
      this.peer = undefined;
      this.channel = undefined;
      this.options.log?.(`proxy lost its channel to the head: ${reason}`);
    });
    return { peer: this.peer, channel };
  }

  private client(): ProxyClient | undefined {
    const c = this.options.client;
    return typeof c === 'function' ? c() : c;
  }

  private poll(): void {
    const client = this.client();
    if (!client) {
      this.reachable = false;
      return;
    }
    client.ProxyState(
      { node_id: this.options.nodeId },
      { deadline: Date.now() + 5000 },
      (err: grpc.ServiceError | null, reply: ProxyStateReply) => {
        // Unreachable: keep serving the last routes; requests wait for the head (see holdMs).
        if (err) {
          this.reachable = false;
          return;
        }
        try {
          this.routeList = keepKnownMethods(JSON.parse(reply.routes_json) as RouteInfo[], this.routeList);
          this.lastStatus = JSON.parse(reply.status_json) as ServeStatus;
          this.reachable = true;
        } catch {
          this.reachable = false;
        }
      },
    );
  }
}

/**
 * A head that just restarted lists an application before its ingress replica has told it the methods
 * (methods {}); the methods known from before stay, rather than the proxy answering 404 meanwhile.
 */
function keepKnownMethods(routes: RouteInfo[], previous: RouteInfo[]): RouteInfo[] {
  return routes.map((r) => {
    if (r.rawHttp || Object.keys(r.methods).length > 0) return r;
    const known = previous.find((p) => p.app === r.app && p.ingress === r.ingress);
    if (!known) return r;
    return {
      ...r,
      methods: known.methods,
      rawHttp: known.rawHttp,
      ...(known.handlesMalformedJson ? { handlesMalformedJson: true } : {}),
      ...(known.internalMethods ? { internalMethods: known.internalMethods } : {}),
    };
  });
}

/** A request the head had accepted when its connection broke: say so, rather than "actor died". */
function linkError(err: unknown, channel: StreamChannel | undefined): unknown {
  if (!(err instanceof ActorDiedError) || !channel?.closed || err.data?.accepted !== true) return err;
  return new ActorDiedError(
    `the connection to the head broke while the request ran (it may have run): ${err.message}`,
    err.data,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
