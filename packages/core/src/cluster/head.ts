/**
 * The head side of a cluster: a gRPC server (protos/cluster.proto) in the controller's process. Agents
 * register their resources, heartbeat, and receive StartActor/KillActor on their Commands stream; each
 * replica's channel is the ActorChannel stream its agent opens. The head feeds the joined nodes to
 * placement (cluster-placement.ts) and starts replicas there as RemoteActors, so the controller and
 * the routers use them exactly like local ones.
 *
 * A node is lost when its Commands stream breaks (the agent died or the connection did) or when it
 * misses `missedHeartbeats` in a row (node-liveness.ts). Its replicas' channels then close with the
 * reason, which makes the replicas exit: requests in flight on them fail with ActorDiedError (retried
 * elsewhere when the replica had not accepted them yet) and the controller places replacements.
 *
 * The same server also serves the agents' HTTP proxies (ProxyState, ProxyChannel: their requests are
 * routed here, to replicas wherever they run) and `serve deploy` (Deploy), through `frontend`.
 *
 * The port runs code on request, so every call must carry the cluster token (cluster-auth.ts checks it
 * before any handler; cluster-token.ts says where it comes from), optionally over TLS or mutual TLS
 * (cluster-tls.ts). A node id held by a live agent cannot be taken by another registration.
 *
 * The nodes' sessions, heartbeats and losses are kept in head-nodes.ts; what the head serves besides its
 * nodes (proxies, deploys) and a non-leader's refusals are in head-frontend.ts.
 *
 * Several heads may share one state in etcd (cluster/ha-head.ts): only the leader takes agents and proxy
 * traffic. A standby refuses registrations with FAILED_PRECONDITION naming the leader (trailer
 * `flotilla-leader`), which agents follow, and forwards `serve deploy` to the leader; a newly elected
 * leader answers UNAVAILABLE while it restores its state, so that no agent registers before the
 * controller knows which of its replicas to re-adopt.
 */
import * as grpc from '@grpc/grpc-js';
import { RemoteActor } from '../actor/remote-actor.js';
import { StreamChannel, type ActorFrame } from '../actor/stream-channel.js';
import { RpcPeer } from '../actor/rpc-peer.js';
import { ClusterPlacement, type PlacementStrategy } from './cluster-placement.js';
import { DEFAULT_LIVENESS } from './node-liveness.js';
import { RefusalLog, serverAuthInterceptor, tokenDigest } from './cluster-auth.js';
import { describeToken, headToken } from './cluster-token.js';
import { serverCredentials, type ClusterServerTls } from './cluster-tls.js';
import { HeadNodes, type NodeSession } from './head-nodes.js';
import { answerDeploy, answerProxyState, notLeading, type HeadFrontend } from './head-frontend.js';
import {
  ACTOR_ID_KEY,
  DEFAULT_CLUSTER_PORT,
  NODE_ID_KEY,
  clusterService,
  type Command,
  type CommandsRequest,
  type DeployReply,
  type DeployRequest,
  type HeartbeatReply,
  type HeartbeatRequest,
  type ProxyStateReply,
  type RegisterNodeReply,
  type RegisterNodeRequest,
} from './cluster-proto.js';
import type { ActorRef } from '../actor/actor-ref.js';
import type { CallServer } from '../actor/rpc-peer.js';
import type { Allocation, NodeResources } from '../controller/placement.js';
import type { StoredNode } from '../controller/checkpoint.js';
import type { NodeStatusInfo } from '../contract/status.js';

export { LEADER_KEY, type HeadFrontend, type HeadRole } from './head-frontend.js';

export interface ClusterHeadOptions {
  /** Interface agents connect to; use '0.0.0.0' to accept other machines. Default: '127.0.0.1'. */
  host?: string;
  /** Port agents connect to; 0 picks a free one. Default: 9100. */
  port?: number;
  /** Heartbeat period agents are told to keep, in ms. Default: 1000. */
  heartbeatIntervalMs?: number;
  /** Heartbeats missed in a row before a node is dead and its replicas are replaced. Default: 3. */
  missedHeartbeats?: number;
  /** 'pack' fills nodes one at a time, 'spread' balances replicas over nodes. Default: 'pack'. */
  strategy?: PlacementStrategy;
  /** Time an agent has to open a new replica's stream before the start counts as failed, in ms. Default: 30000. */
  actorStartTimeoutMs?: number;
  /**
   * Node joins and losses, one line each; also where the cluster token lives and refused calls (those
   * go to stderr when no log is given). Default: none.
   */
  log?: (line: string) => void;
  /**
   * The cluster token every call must carry. Default: the file `tokenFile`, else FLOTILLA_CLUSTER_TOKEN,
   * else ~/.flotilla/cluster-token (or $FLOTILLA_CONFIG_DIR/cluster-token), generated there if missing.
   */
  token?: string;
  tokenFile?: string;
  /** TLS (and optionally mutual TLS) on the cluster port. Default: none (plaintext, token still required). */
  tls?: ClusterServerTls;
}

export class ClusterHead implements AsyncDisposable {
  readonly placement: ClusterPlacement;
  /** Resolves with the bound address ('host:port') once agents can connect. */
  readonly listening: Promise<string>;
  private readonly server: grpc.Server;
  /** SHA-256 of the accepted token; undefined until listen() resolved it (every call is refused until then). */
  private acceptedDigest: Buffer | undefined;
  private readonly nodes: HeadNodes;
  private readonly pending = new Map<string, { channel: StreamChannel; timer: NodeJS.Timeout; nodeId: string }>();
  private readonly sweeper: NodeJS.Timeout;
  private boundAddress = '';
  private readonly proxies = new Set<StreamChannel>();
  /** Set by ServeInstance (routes, status, proxy routing) and the CLI (deploy). */
  frontend: HeadFrontend | undefined;

  constructor(
    private readonly options: ClusterHeadOptions,
    local: NodeResources,
  ) {
    this.placement = new ClusterPlacement(local, options.strategy);
    const intervalMs = options.heartbeatIntervalMs ?? DEFAULT_LIVENESS.intervalMs;
    this.nodes = new HeadNodes({
      placement: this.placement,
      local,
      intervalMs,
      missedLimit: options.missedHeartbeats ?? DEFAULT_LIVENESS.missedLimit,
      log: options.log,
      frontend: () => this.frontend,
    });
    const refusals = new RefusalLog(options.log ?? ((line) => process.stderr.write(`[flotilla head] ${line}\n`)));
    this.server = new grpc.Server({ interceptors: [serverAuthInterceptor(() => this.acceptedDigest, refusals)] });
    this.server.addService(clusterService().service, {
      RegisterNode: (
        call: grpc.ServerUnaryCall<RegisterNodeRequest, RegisterNodeReply>,
        cb: grpc.sendUnaryData<RegisterNodeReply>,
      ) => this.nodes.register(call.request, cb),
      Heartbeat: (
        call: grpc.ServerUnaryCall<HeartbeatRequest, HeartbeatReply>,
        cb: grpc.sendUnaryData<HeartbeatReply>,
      ) => cb(null, { known: this.nodes.heartbeat(call.request) }),
      Commands: (call: grpc.ServerWritableStream<CommandsRequest, Command>) => this.nodes.openCommands(call),
      ActorChannel: (call: grpc.ServerDuplexStream<ActorFrame, ActorFrame>) => this.openActorChannel(call),
      ProxyState: (_call: grpc.ServerUnaryCall<unknown, ProxyStateReply>, cb: grpc.sendUnaryData<ProxyStateReply>) =>
        answerProxyState(this.frontend, cb),
      ProxyChannel: (call: grpc.ServerDuplexStream<ActorFrame, ActorFrame>) => this.openProxyChannel(call),
      Deploy: (call: grpc.ServerUnaryCall<DeployRequest, DeployReply>, cb: grpc.sendUnaryData<DeployReply>) =>
        answerDeploy(this.frontend, call.request, cb),
    });
    this.sweeper = setInterval(() => this.nodes.sweep(), Math.max(50, intervalMs / 2));
    this.listening = this.listen();
    // Awaited by startServe; this keeps a bind failure of an instance nobody awaits from crashing the process.
    this.listening.catch(() => undefined);
  }

  /** 'host:port' agents connect to (empty until listening resolves). */
  get address(): string {
    return this.boundAddress;
  }

  /**
   * Starts a replica on the node of `alloc` (ControllerOptions.remote). Returns at once: the channel
   * buffers until the agent opens the actor's stream, and closes with the reason if it never does.
   */
  createActor(spec: { modulePath: string }, id: string, alloc: Allocation, server: CallServer): ActorRef {
    const nodeId = alloc.nodeId!;
    const channel = new StreamChannel(`node ${nodeId}`);
    const actor = new RemoteActor({
      id,
      node: nodeId,
      server,
      channel,
      requestKill: (reason) => this.nodes.send(nodeId, { kill: { actor_id: id, reason } }),
    });
    const node = this.nodes.get(nodeId);
    const start = { actor_id: id, gpu_ids: alloc.gpuShares.map((g) => g.id), module_path: spec.modulePath };
    if (!node || !this.nodes.send(nodeId, { start })) {
      channel.shutdown(`node ${nodeId} is gone`);
      return actor;
    }
    this.expect(node, id, channel, 'start the replica');
    return actor;
  }

  /**
   * A replica that outlived the previous head, on a node registering now (HeadFrontend.adopt): the
   * channel waits for the agent to reopen the replica's stream; nothing is started.
   */
  adoptActor(id: string, nodeId: string, server: CallServer): ActorRef {
    const channel = new StreamChannel(`node ${nodeId}`);
    const actor = new RemoteActor({
      id,
      node: nodeId,
      server,
      channel,
      requestKill: (reason) => this.nodes.send(nodeId, { kill: { actor_id: id, reason } }),
    });
    const node = this.nodes.get(nodeId);
    if (!node) channel.shutdown(`node ${nodeId} is gone`);
    else this.expect(node, id, channel, 'reconnect the replica');
    return actor;
  }

  /** The agent must open the actor's stream within actorStartTimeoutMs, or the channel closes. */
  private expect(node: NodeSession, id: string, channel: StreamChannel, what: string): void {
    node.actors.set(id, channel);
    const timeoutMs = this.options.actorStartTimeoutMs ?? 30_000;
    const timer = setTimeout(
      () => channel.shutdown(`node ${node.id} did not ${what} within ${timeoutMs} ms`),
      timeoutMs,
    );
    this.pending.set(id, { channel, timer, nodeId: node.id });
    channel.onClose(() => {
      node.actors.delete(id);
      clearTimeout(timer);
      if (this.pending.get(id)?.channel === channel) this.pending.delete(id);
    });
  }

  /** The live agents, as the controller saves them with its state (the node registry). */
  storedNodes(): StoredNode[] {
    return this.nodes.stored();
  }

  /** The head's node, then live agents (join order), then recently dead ones with the reason. */
  describeNodes(nowMs = Date.now()): NodeStatusInfo[] {
    return this.nodes.describe(nowMs);
  }

  /** Drops every node (their replicas' channels close) and stops the server. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.nodes.loseAll('the head is shutting down');
    for (const p of [...this.proxies]) p.shutdown('the head is shutting down');
    await this.listening.catch(() => undefined);
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async listen(): Promise<string> {
    const host = this.options.host ?? '127.0.0.1';
    const token = headToken({ token: this.options.token, tokenFile: this.options.tokenFile });
    this.options.log?.(describeToken(token));
    if (token.warning) this.options.log?.(token.warning);
    this.acceptedDigest = tokenDigest(token.token);
    const credentials = serverCredentials(this.options.tls);
    const port = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(
        `${host.includes(':') ? `[${host}]` : host}:${this.options.port ?? DEFAULT_CLUSTER_PORT}`,
        credentials,
        (err, bound) => (err ? reject(err) : resolve(bound)),
      );
    });
    this.boundAddress = `${host}:${port}`;
    const tls = this.options.tls;
    this.options.log?.(
      tls
        ? `cluster port ${this.boundAddress}: TLS${tls.requireClientCert ? ' with client certificates (mutual TLS)' : ''}, cluster token required`
        : `cluster port ${this.boundAddress}: plaintext (no TLS), cluster token required; use TLS (--cluster-tls-cert) beyond a trusted network`,
    );
    return this.boundAddress;
  }

  private openActorChannel(call: grpc.ServerDuplexStream<ActorFrame, ActorFrame>): void {
    const actorId = String(call.metadata.get(ACTOR_ID_KEY)[0] ?? '');
    const nodeId = String(call.metadata.get(NODE_ID_KEY)[0] ?? '');
    const entry = this.pending.get(actorId);
    // Only the node the replica was placed on may carry it.
    if (!entry || entry.nodeId !== nodeId) {
      call.write({ close_reason: `the head expects no replica '${actorId}' on node '${nodeId}'` });
      return void call.end();
    }
    this.pending.delete(actorId);
    clearTimeout(entry.timer);
    entry.channel.attach(call);
  }

  /** One agent proxy's requests: handle calls (with a target) that the head's routers place. */
  private openProxyChannel(call: grpc.ServerDuplexStream<ActorFrame, ActorFrame>): void {
    const nodeId = String(call.metadata.get(NODE_ID_KEY)[0] ?? '');
    const channel = new StreamChannel(`proxy on node ${nodeId}`, call);
    if (!this.frontend) return channel.shutdown('the head is starting');
    const refusal = notLeading(this.frontend);
    if (refusal) return channel.shutdown(refusal.details);
    // The peer lives as long as the channel: its listeners hold it.
    new RpcPeer(channel, this.frontend.proxyServer(nodeId));
    this.proxies.add(channel);
    channel.onClose(() => this.proxies.delete(channel));
  }
}
