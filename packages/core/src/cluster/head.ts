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
 * Several heads may share one state in etcd (cluster/ha-head.ts): only the leader takes agents and proxy
 * traffic. A standby refuses registrations with FAILED_PRECONDITION naming the leader (trailer
 * `flotilla-leader`), which agents follow, and forwards `serve deploy` to the leader; a newly elected
 * leader answers UNAVAILABLE while it restores its state, so that no agent registers before the
 * controller knows which of its replicas to re-adopt.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { RemoteActor } from '../actor/remote-actor.js';
import { StreamChannel, type ActorFrame } from '../actor/stream-channel.js';
import { RpcPeer } from '../actor/rpc-peer.js';
import { ClusterPlacement, LOCAL_NODE, type PlacementStrategy } from './cluster-placement.js';
import { DEFAULT_LIVENESS, NodeLivenessTable } from './node-liveness.js';
import { RefusalLog, serverAuthInterceptor, tokenDigest } from './cluster-auth.js';
import { describeToken, headToken } from './cluster-token.js';
import { serverCredentials, type ClusterServerTls } from './cluster-tls.js';
import {
  ACTOR_ID_KEY,
  CLUSTER_PROTOCOL_VERSION,
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
import type { NodeStatusInfo, ServeStatus } from '../contract/status.js';
import type { RouteInfo } from '../contract/routes.js';

/** What the head serves besides its nodes: the agents' proxies and deploys (ServeInstance sets it). */
export interface HeadFrontend {
  routes(): RouteInfo[];
  status(): ServeStatus;
  /** Routes one agent proxy's requests (handle calls naming their target) to the replicas. */
  proxyServer(nodeId: string): CallServer;
  /** Adds or updates an application (`serve deploy`); absent: this head refuses deploys. */
  deploy?(req: DeployRequest): Promise<DeployReply>;
  /**
   * A rejoining agent still runs these replicas (the head restarted): re-adopt those the controller
   * expects (through adoptActor) and return their ids; the agent kills the others.
   */
  adopt?(nodeId: string, actorIds: string[]): string[];
  /** Heads that elect a leader: this head's role now. Absent: this head always leads. */
  role?(): HeadRole;
  /** A standby's way to the leader for `serve deploy` (absent: a standby refuses deploys, naming the leader). */
  forwardDeploy?(req: DeployRequest): Promise<DeployReply>;
}

export interface HeadRole {
  leading: boolean;
  /** Elected, but still restoring the state (deploying the applications again): agents wait. */
  restoring?: boolean;
  /** The leader's cluster address ('host:port') when known. */
  leader?: string;
}

/** Trailer of a standby's refusal: the leader's cluster address, for agents to follow. */
export const LEADER_KEY = 'flotilla-leader';

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

interface NodeSession {
  id: string;
  sessionId: string;
  address: string;
  resources: NodeResources;
  labels: Record<string, string>;
  commands?: grpc.ServerWritableStream<CommandsRequest, Command>;
  readonly actors: Map<string, StreamChannel>;
}

const DEAD_KEPT = 20;

export class ClusterHead implements AsyncDisposable {
  readonly placement: ClusterPlacement;
  /** Resolves with the bound address ('host:port') once agents can connect. */
  readonly listening: Promise<string>;
  private readonly server: grpc.Server;
  /** SHA-256 of the accepted token; undefined until listen() resolved it (every call is refused until then). */
  private acceptedDigest: Buffer | undefined;
  private readonly nodes = new Map<string, NodeSession>();
  private readonly dead: NodeStatusInfo[] = [];
  private readonly pending = new Map<string, { channel: StreamChannel; timer: NodeJS.Timeout; nodeId: string }>();
  private readonly liveness: NodeLivenessTable;
  private readonly intervalMs: number;
  private readonly sweeper: NodeJS.Timeout;
  private boundAddress = '';
  private lastSweepMs = Date.now();
  private readonly proxies = new Set<StreamChannel>();
  /** Set by ServeInstance (routes, status, proxy routing) and the CLI (deploy). */
  frontend: HeadFrontend | undefined;

  constructor(
    private readonly options: ClusterHeadOptions,
    private readonly local: NodeResources,
  ) {
    this.placement = new ClusterPlacement(local, options.strategy);
    this.intervalMs = options.heartbeatIntervalMs ?? DEFAULT_LIVENESS.intervalMs;
    this.liveness = new NodeLivenessTable({
      intervalMs: this.intervalMs,
      missedLimit: options.missedHeartbeats ?? DEFAULT_LIVENESS.missedLimit,
    });
    const refusals = new RefusalLog(options.log ?? ((line) => process.stderr.write(`[flotilla head] ${line}\n`)));
    this.server = new grpc.Server({ interceptors: [serverAuthInterceptor(() => this.acceptedDigest, refusals)] });
    this.server.addService(clusterService().service, {
      RegisterNode: (
        call: grpc.ServerUnaryCall<RegisterNodeRequest, RegisterNodeReply>,
        cb: grpc.sendUnaryData<RegisterNodeReply>,
      ) => this.register(call.request, cb),
      Heartbeat: (
        call: grpc.ServerUnaryCall<HeartbeatRequest, HeartbeatReply>,
        cb: grpc.sendUnaryData<HeartbeatReply>,
      ) => cb(null, { known: this.heartbeat(call.request) }),
      Commands: (call: grpc.ServerWritableStream<CommandsRequest, Command>) => this.openCommands(call),
      ActorChannel: (call: grpc.ServerDuplexStream<ActorFrame, ActorFrame>) => this.openActorChannel(call),
      ProxyState: (_call: grpc.ServerUnaryCall<unknown, ProxyStateReply>, cb: grpc.sendUnaryData<ProxyStateReply>) =>
        this.proxyState(cb),
      ProxyChannel: (call: grpc.ServerDuplexStream<ActorFrame, ActorFrame>) => this.openProxyChannel(call),
      Deploy: (call: grpc.ServerUnaryCall<DeployRequest, DeployReply>, cb: grpc.sendUnaryData<DeployReply>) =>
        this.deploy(call.request, cb),
    });
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, this.intervalMs / 2));
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
      requestKill: (reason) => this.send(nodeId, { kill: { actor_id: id, reason } }),
    });
    const node = this.nodes.get(nodeId);
    const start = { actor_id: id, gpu_ids: alloc.gpuShares.map((g) => g.id), module_path: spec.modulePath };
    if (!node || !this.send(nodeId, { start })) {
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
      requestKill: (reason) => this.send(nodeId, { kill: { actor_id: id, reason } }),
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
    return [...this.nodes.values()].map((n) => ({
      id: n.id,
      address: n.address,
      resources: { ...n.resources },
      labels: { ...n.labels },
    }));
  }

  /**
   * Why this head takes no agents or proxy traffic now (a standby, or a leader restoring), as a gRPC
   * error carrying the leader's address; undefined when it leads.
   */
  private notLeading(): grpc.ServiceError | undefined {
    const role = this.frontend?.role?.();
    if (!role || (role.leading && !role.restoring)) return undefined;
    const metadata = new grpc.Metadata();
    if (role.leader && !role.leading) metadata.set(LEADER_KEY, role.leader);
    const details = role.leading
      ? 'this head was just elected and is restoring the state; try again shortly'
      : `this head is a standby; the leader is ${role.leader ? `at ${role.leader}` : 'not elected yet'}`;
    return Object.assign(new Error(details), {
      code: role.leading || !role.leader ? grpc.status.UNAVAILABLE : grpc.status.FAILED_PRECONDITION,
      details,
      metadata,
    });
  }

  /** The head's node, then live agents (join order), then recently dead ones with the reason. */
  describeNodes(nowMs = Date.now()): NodeStatusInfo[] {
    // A node past its heartbeat limit is dropped now rather than shown DEAD while still listed as live.
    this.sweep();
    const localUsage = this.placement.usage(LOCAL_NODE)!;
    const out: NodeStatusInfo[] = [
      {
        id: LOCAL_NODE,
        state: 'ALIVE',
        address: 'head',
        resources: { ...this.local },
        free: freeOf(localUsage),
        replicas: localUsage.replicas,
        labels: {},
      },
    ];
    for (const n of this.nodes.values()) {
      const usage = this.placement.usage(n.id);
      out.push({
        id: n.id,
        state: this.liveness.state(n.id, nowMs) ?? 'ALIVE',
        address: n.address,
        resources: { ...n.resources },
        free: usage && freeOf(usage),
        replicas: n.actors.size,
        labels: { ...n.labels },
        lastHeartbeatMsAgo: this.liveness.silenceMs(n.id, nowMs),
      });
    }
    return [...out, ...this.dead];
  }

  /** Drops every node (their replicas' channels close) and stops the server. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const id of [...this.nodes.keys()]) this.lose(id, 'the head is shutting down');
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

  private register(req: RegisterNodeRequest, cb: grpc.sendUnaryData<RegisterNodeReply>): void {
    if (req.protocol_version !== CLUSTER_PROTOCOL_VERSION) {
      return cb({
        code: grpc.status.FAILED_PRECONDITION,
        details:
          `version mismatch: the agent speaks cluster protocol ` +
          `v${req.protocol_version}, this head v${CLUSTER_PROTOCOL_VERSION}; run the same Flotilla version on every node`,
      });
    }
    const bad = badRequest(req);
    if (bad) return cb({ code: grpc.status.INVALID_ARGUMENT, details: bad });
    const refusal = this.notLeading();
    if (refusal) return cb(refusal);
    // A live node's id cannot be taken: the second registration is refused and the node keeps its
    // replicas. One past its heartbeat limit (an agent that restarted before the head noticed) is dropped
    // and the id is free again.
    const held = this.nodes.get(req.node_id);
    if (held) {
      if (this.liveness.state(held.id, Date.now()) !== 'DEAD') {
        return cb({
          code: grpc.status.ALREADY_EXISTS,
          details:
            `node id '${req.node_id}' is held by a live agent (${held.address}); ` +
            'give each node its own --node-id, or wait until the old agent is gone',
        });
      }
      this.lose(held.id, `missed its heartbeats; the id registered again`);
    }
    const r = req.resources;
    const session: NodeSession = {
      id: req.node_id,
      sessionId: randomUUID(),
      address: req.address || `pid ${req.pid}`,
      resources: { cpus: r.cpus, gpus: r.gpus, memoryMb: r.memory_mb },
      labels: { ...req.labels },
      actors: new Map(),
    };
    this.nodes.set(session.id, session);
    this.liveness.register(session.id, Date.now());
    const survivors = req.actor_ids ?? [];
    const adopt = survivors.length > 0 ? (this.frontend?.adopt?.(session.id, survivors) ?? []) : [];
    if (survivors.length > 0) {
      this.options.log?.(`node ${session.id} still runs ${survivors.length} replica(s); re-adopting ${adopt.length}`);
    }
    cb(null, {
      session_id: session.sessionId,
      heartbeat_interval_ms: this.intervalMs,
      head_version: String(CLUSTER_PROTOCOL_VERSION),
      adopt,
    });
  }

  private heartbeat(req: HeartbeatRequest): boolean {
    const node = this.nodes.get(req.node_id);
    return node?.sessionId === req.session_id && this.liveness.beat(node.id, Date.now());
  }

  /** The node becomes placeable only once its Commands stream is open (StartActor needs it). */
  private openCommands(call: grpc.ServerWritableStream<CommandsRequest, Command>): void {
    const node = this.nodes.get(call.request.node_id);
    if (!node || node.sessionId !== call.request.session_id) {
      return void call.destroy(
        Object.assign(new Error('unknown node session: register first'), { code: grpc.status.NOT_FOUND }),
      );
    }
    node.commands = call;
    const gone = (why: string) => {
      if (this.nodes.get(node.id) === node) this.lose(node.id, why);
    };
    call.on('cancelled', () => gone('connection lost'));
    call.on('error', (err) => gone(`connection lost (${err.message})`));
    call.on('close', () => gone('connection closed'));
    this.placement.addNode(node.id, node.resources);
    this.options.log?.(`node ${node.id} joined (${node.address}: ${describe(node.resources)})`);
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

  private proxyState(cb: grpc.sendUnaryData<ProxyStateReply>): void {
    if (!this.frontend) return cb({ code: grpc.status.UNAVAILABLE, details: 'the head is starting' });
    // A standby answers with what its own proxies serve (the leader's routes, leader: false), so that
    // `serve status` works against any head; a leader still restoring has nothing to show yet.
    if (this.frontend.role?.().restoring) return cb(this.notLeading() ?? null);
    cb(null, {
      routes_json: JSON.stringify(this.frontend.routes()),
      status_json: JSON.stringify(this.frontend.status()),
    });
  }

  /** One agent proxy's requests: handle calls (with a target) that the head's routers place. */
  private openProxyChannel(call: grpc.ServerDuplexStream<ActorFrame, ActorFrame>): void {
    const nodeId = String(call.metadata.get(NODE_ID_KEY)[0] ?? '');
    const channel = new StreamChannel(`proxy on node ${nodeId}`, call);
    if (!this.frontend) return channel.shutdown('the head is starting');
    const refusal = this.notLeading();
    if (refusal) return channel.shutdown(refusal.details);
    // The peer lives as long as the channel: its listeners hold it.
    new RpcPeer(channel, this.frontend.proxyServer(nodeId));
    this.proxies.add(channel);
    channel.onClose(() => this.proxies.delete(channel));
  }

  private deploy(req: DeployRequest, cb: grpc.sendUnaryData<DeployReply>): void {
    const role = this.frontend?.role?.();
    const forward = this.frontend?.forwardDeploy;
    if (role && !role.leading) {
      if (!forward || !role.leader) return cb(this.notLeading() ?? null);
      return void forward(req).then(
        (reply) => cb(null, reply),
        (err: grpc.ServiceError) =>
          cb({
            code: typeof err.code === 'number' ? err.code : grpc.status.UNAVAILABLE,
            details: `forwarded to the leader at ${role.leader}: ${err.details || err.message}`,
          }),
      );
    }
    if (role?.restoring) return cb(this.notLeading() ?? null);
    const deploy = this.frontend?.deploy;
    if (!deploy) {
      return cb({
        code: grpc.status.UNIMPLEMENTED,
        details: 'this head takes no deploys (started programmatically: use ServeInstance.deploy)',
      });
    }
    deploy(req).then(
      (reply) => cb(null, reply),
      (err: Error & { hint?: string }) =>
        cb({
          code: grpc.status.FAILED_PRECONDITION,
          details:
            `${err.name && err.name !== 'Error' && err.name !== 'CliError' ? `${err.name}: ` : ''}${err.message}` +
            (err.hint ? `\n  next: ${err.hint}` : ''),
        }),
    );
  }

  private send(nodeId: string, command: Command): boolean {
    const stream = this.nodes.get(nodeId)?.commands;
    if (!stream) return false;
    try {
      stream.write(command);
      return true;
    } catch {
      return false;
    }
  }

  private sweep(): void {
    const now = Date.now();
    const stalled = now - this.lastSweepMs > 2 * this.intervalMs;
    this.lastSweepMs = now;
    // After a stall of this process, heartbeats that arrived meanwhile are still unread: judge next time.
    if (stalled) return;
    for (const { nodeId, missed } of this.liveness.sweep(now)) {
      this.lose(nodeId, `missed ${missed} heartbeats (every ${this.intervalMs} ms)`);
    }
  }

  private lose(nodeId: string, why: string): void {
    const node = this.nodes.get(nodeId);
    if (!node) return;
    this.nodes.delete(nodeId);
    this.placement.removeNode(nodeId);
    this.liveness.remove(nodeId);
    this.dead.unshift({
      id: nodeId,
      state: 'DEAD',
      address: node.address,
      resources: node.resources,
      replicas: 0,
      labels: node.labels,
      message: `${why} at ${new Date().toISOString()}`,
    });
    this.dead.splice(DEAD_KEPT);
    for (const channel of [...node.actors.values()]) channel.shutdown(`node ${nodeId} lost: ${why}`);
    try {
      node.commands?.end();
    } catch {
      /* the connection is already gone */
    }
    this.options.log?.(`node ${nodeId} lost: ${why}`);
  }
}

function badRequest(req: RegisterNodeRequest): string | null {
  if (!req.node_id || req.node_id === LOCAL_NODE)
    return `node id must be non-empty and not '${LOCAL_NODE}', got '${req.node_id}'`;
  const r = req.resources;
  if (!r || ![r.cpus, r.gpus, r.memory_mb].every((n) => Number.isFinite(n) && n >= 0))
    return 'resources must be numbers >= 0';
  if (!Number.isInteger(r.gpus)) return `gpus must be a whole number, got ${r.gpus}`;
  return null;
}

function freeOf(u: NodeResources): NodeResources {
  return { cpus: u.cpus, gpus: u.gpus, memoryMb: u.memoryMb };
}

function describe(r: NodeResources): string {
  return `${r.cpus} CPUs, ${r.gpus} GPUs, ${r.memoryMb} MiB`;
}
