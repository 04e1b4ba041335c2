/**
 * A node agent (`serve agent --address HEAD:PORT`): registers this machine's resources with the head,
 * heartbeats, and hosts replica processes on the head's StartActor, bridging each one's IPC channel
 * to an ActorChannel stream. The agent never interprets the protocol messages it carries; the head's
 * RemoteActor and the replica talk as they would over a local process's IPC.
 *
 * The user's module is loaded by the path the head sends, so the application code must be at the same
 * path on every node (one container image, or the same checkout); `workingDir` only sets the replica
 * processes' current directory (for relative model paths and the like).
 *
 * Losing the head (its Commands stream ends, or it forgot this node) leaves the local replicas running
 * for `orphanGraceMs` while the agent registers again with backoff (actor-bridge.ts cancels the calls
 * the lost head had made): a restarted head re-adopts those its controller's checkpoint names, and the
 * agent kills the rest, as it kills all of them when the grace runs out first.
 *
 * With `proxy`, the agent also runs an HTTP proxy (node-proxy.ts): requests to it are routed by the
 * head to replicas wherever they run, and wait out a short head restart instead of failing.
 *
 * Every call carries the cluster token (cluster-token.ts: given, a token file, FLOTILLA_CLUSTER_TOKEN, or
 * the head machine's ~/.flotilla/cluster-token). Found no token yet, the agent keeps looking while it
 * keeps trying to reach the head, as a head on the same machine writes its token when it starts.
 *
 * Several heads (state in etcd, one leader): `address` lists them ('A,B,C'). The agent registers with
 * the first that takes it; a standby refuses, naming the leader, which the agent then tries. When the
 * leader dies the agent registers with the next leader as with a restarted head (its replicas are kept
 * for re-adoption), and its proxy follows it.
 */
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { IpcChannel } from '../actor/channel.js';
import { ActorBridge } from './actor-bridge.js';
import { spawnActorProcess } from '../actor/process-actor.js';
import { StreamChannel } from '../actor/stream-channel.js';
import { cudaVisibleDevices, detectLocalResources, type NodeResources } from '../controller/placement.js';
import { ClusterError, UnauthenticatedError } from '../errors.js';
import { LEADER_KEY } from './head.js';
import { clusterClient, explainCallError, missingToken, type ClusterClient } from './cluster-client.js';
import { findToken, type ResolvedToken } from './cluster-token.js';
import { tlsHint, type ClusterClientTls } from './cluster-tls.js';
import { Ingress } from '../ingress/ingress.js';
import { NodeProxyTarget } from './node-proxy.js';
import {
  ACTOR_ID_KEY,
  CLUSTER_PROTOCOL_VERSION,
  NODE_ID_KEY,
  type Command,
  type HeartbeatReply,
  type RegisterNodeReply,
  type StartActorCommand,
} from './cluster-proto.js';

export interface ClusterAgentOptions {
  /** The head's cluster address, 'host:port', or several heads' ('A,B,C') that elect a leader. */
  address: string;
  /** Unique per node. Default: the host name. */
  nodeId?: string;
  /** What this node offers to placement. Default: detected (CPUs, memory; GPUs from FLOTILLA_GPUS or CUDA_VISIBLE_DEVICES). */
  resources?: Partial<NodeResources>;
  /** Shown in the head's status. Default: none. */
  labels?: Record<string, string>;
  /** Current directory of replica processes. Default: this process's. */
  workingDir?: string;
  /** How long start() keeps trying to reach the head, in ms. Default: 10000. */
  connectTimeoutMs?: number;
  /** Register again after losing the head (as a Kubernetes pod should). Default: true. */
  reconnect?: boolean;
  /** Joins, losses and replica starts, one line each. Default: none. */
  log?: (line: string) => void;
  /**
   * Run an HTTP proxy on this node that serves every application of the head. `holdMs`: how long its
   * requests wait for an unreachable head. Default: none (`serve agent` starts one on 127.0.0.1:8000).
   */
  proxy?: { host?: string; port?: number; holdMs?: number; retryAfterHeadLoss?: boolean };
  /** How long replicas outlive a lost head, waiting for it (restarted) to re-adopt them, in ms; 0 kills them at once. Default: 60000. */
  orphanGraceMs?: number;
  /**
   * The head's cluster token. Default: the file `tokenFile`, else FLOTILLA_CLUSTER_TOKEN, else
   * ~/.flotilla/cluster-token (or $FLOTILLA_CONFIG_DIR/cluster-token), where a head on this machine keeps it.
   */
  token?: string;
  tokenFile?: string;
  /** TLS to the head (verify its certificate against caFile; certFile/keyFile for mutual TLS). Default: none. */
  tls?: ClusterClientTls;
}

interface HostedActor {
  child: ChildProcess;
  bridge: ActorBridge;
}

/** After an actor's stream closes, how long to wait for the Commands stream to show the head is gone too. */
const LOSS_SETTLE_MS = 300;

export class ClusterAgent implements AsyncDisposable {
  readonly nodeId: string;
  readonly resources: NodeResources;
  /** One client per head address; `current` is the head this agent registers with (the leader). */
  private readonly clients = new Map<string, ClusterClient>();
  private readonly addresses: string[];
  private currentAddress: string;
  /** The token every call carries; looked up again at each registration until found. */
  private token: ResolvedToken | undefined;
  private readonly actors = new Map<string, HostedActor>();
  private session: { id: string; intervalMs: number } | undefined;
  private commands: grpc.ClientReadableStream<Command> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private orphanTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private proxyTarget: NodeProxyTarget | undefined;
  private ingress: Ingress | undefined;

  private constructor(private readonly options: ClusterAgentOptions) {
    this.nodeId = options.nodeId ?? os.hostname();
    const detected = detectLocalResources(process.env, os.availableParallelism(), Math.floor(os.totalmem() / 2 ** 20));
    this.resources = { ...detected, ...options.resources };
    this.addresses = options.address
      .split(',')
      .map((a) => a.trim())
      .filter((a) => a !== '');
    this.currentAddress = this.addresses[0] ?? options.address;
  }

  /** The client of the head this agent registers with. */
  private get client(): ClusterClient {
    return this.clientFor(this.currentAddress);
  }

  private clientFor(address: string): ClusterClient {
    let c = this.clients.get(address);
    if (!c) {
      c = clusterClient(address, () => this.token?.token, this.options.tls);
      this.clients.set(address, c);
    }
    return c;
  }

  /** The head this agent is registered with (or trying), 'host:port'. */
  get headAddress(): string {
    return this.currentAddress;
  }

  /** Registers with the head; rejects with ClusterError when it cannot be reached or refuses. */
  static async start(options: ClusterAgentOptions): Promise<ClusterAgent> {
    const agent = new ClusterAgent(options);
    try {
      await agent.join(options.connectTimeoutMs ?? 10_000);
      if (options.proxy) await agent.startProxy(options.proxy);
    } catch (err) {
      await agent.close();
      throw err;
    }
    return agent;
  }

  /** Replicas running here now. */
  get actorCount(): number {
    return this.actors.size;
  }

  /** This node's HTTP proxy ('http://host:port'), when it runs one. */
  get proxyUrl(): string | undefined {
    return this.ingress?.http?.url;
  }

  /** Stops the proxy, kills the replicas, leaves the head (which then replaces them elsewhere) and closes the connection. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.orphanTimer);
    this.proxyTarget?.close();
    await this.ingress?.close(1000);
    this.leave();
    await this.killAll();
    for (const c of this.clients.values()) c.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private async startProxy(options: NonNullable<ClusterAgentOptions['proxy']>): Promise<void> {
    this.proxyTarget = new NodeProxyTarget({
      // The head registered with now: after a failover, the new leader.
      client: () => this.client,
      nodeId: this.nodeId,
      holdMs: options.holdMs,
      retryAfterHeadLoss: options.retryAfterHeadLoss,
      log: this.options.log,
    });
    await this.proxyTarget.ready();
    this.ingress = await Ingress.start(this.proxyTarget, {
      http: { host: options.host, port: options.port },
      grpc: false,
    });
    this.options.log?.(`HTTP proxy on ${this.ingress.http?.url} (every application of the head)`);
  }

  private async join(timeoutMs: number): Promise<void> {
    const reply = await this.register(Date.now() + timeoutMs);
    this.session = { id: reply.session_id, intervalMs: reply.heartbeat_interval_ms || 1000 };
    this.openCommands();
    this.reattach(new Set(reply.adopt ?? []));
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.session.intervalMs);
    this.options.log?.(
      `node ${this.nodeId} joined the head at ${this.currentAddress} ` +
        `(${this.resources.cpus} CPUs, ${this.resources.gpus} GPUs, ${this.resources.memoryMb} MiB)`,
    );
  }

  /** Retries while the head is unreachable (it may still be starting), until `deadlineMs`. */
  private async register(deadlineMs: number): Promise<RegisterNodeReply> {
    const r = this.resources;
    const request = {
      node_id: this.nodeId,
      address: os.hostname(),
      labels: this.options.labels ?? {},
      pid: process.pid,
      resources: { cpus: r.cpus, gpus: r.gpus, memory_mb: r.memoryMb },
      protocol_version: CLUSTER_PROTOCOL_VERSION,
      actor_ids: [...this.actors.keys()],
    };
    let lastCause = '';
    // Set when the last cause is a TLS failure: the head is there, so "is it running?" would mislead.
    let tlsFailure = false;
    for (;;) {
      if (!this.lookUpToken()) {
        if (Date.now() + 50 >= deadlineMs || this.closed) throw missingToken(this.options.address);
        await new Promise((res) => setTimeout(res, 250));
        continue;
      }
      const address = this.currentAddress;
      try {
        return await new Promise<RegisterNodeReply>((resolve, reject) =>
          this.clientFor(address).RegisterNode(
            request,
            // At least 1 s per attempt: on a busy machine a shorter one can expire before the connection
            // is even tried, and "deadline exceeded" says less than the refusal it would have seen.
            { deadline: Math.max(Date.now() + 1000, Math.min(deadlineMs, Date.now() + 5000)) },
            (err: grpc.ServiceError | null, reply: RegisterNodeReply) => (err ? reject(err) : resolve(reply)),
          ),
        );
      } catch (err) {
        const e = err as grpc.ServiceError;
        const usingTls = this.options.tls !== undefined;
        // A standby head names the leader: register there at once.
        const leader = e.metadata?.get(LEADER_KEY)[0];
        if (e.code === grpc.status.FAILED_PRECONDITION && typeof leader === 'string' && leader !== '') {
          lastCause = `${address} is a standby head (${e.details})`;
          if (leader !== address) {
            this.currentAddress = leader;
            if (Date.now() + 50 < deadlineMs && !this.closed) continue;
          }
        }
        if (e.code === grpc.status.UNAUTHENTICATED) {
          throw new UnauthenticatedError(
            `the head at ${address} refused node '${this.nodeId}': ${explainCallError(e, usingTls)}`,
            { address },
          );
        }
        // A live node holds the id: it may be this node's previous agent, about to be declared dead.
        const retry =
          e.code === grpc.status.UNAVAILABLE ||
          e.code === grpc.status.DEADLINE_EXCEEDED ||
          e.code === grpc.status.ALREADY_EXISTS ||
          (e.code === grpc.status.FAILED_PRECONDITION && leader !== undefined);
        if (!retry)
          throw new ClusterError(`the head at ${address} refused node '${this.nodeId}': ${e.details || e.message}`);
        // A connection error says more than the deadline of the last, shortened attempt.
        if ((e.code !== grpc.status.DEADLINE_EXCEEDED || !lastCause) && leader === undefined) {
          lastCause = explainCallError(e, usingTls);
          tlsFailure = usingTls && tlsHint(e.details || e.message, true) !== undefined;
        }
        if (Date.now() + 50 >= deadlineMs || this.closed) {
          if (e.code === grpc.status.ALREADY_EXISTS)
            throw new ClusterError(`the head at ${address} refused node '${this.nodeId}': ${lastCause}`);
          throw new ClusterError(
            `cannot reach the head at ${this.options.address}: ${lastCause}` +
              (tlsFailure
                ? ''
                : ' (is `serve start --head` or `serve run … --cluster-port` running there, and the port open?)'),
            { address: this.options.address },
          );
        }
        // Another head may lead: try the next address (after a pause once all were tried).
        const i = this.addresses.indexOf(address);
        const next = this.addresses[(i + 1) % this.addresses.length] ?? address;
        if (e.code !== grpc.status.ALREADY_EXISTS) this.currentAddress = next;
        if (i === -1 || i === this.addresses.length - 1 || e.code === grpc.status.ALREADY_EXISTS)
          await new Promise((res) => setTimeout(res, 250));
      }
    }
  }

  /** True once a token is known: given, or found now (a head on this machine may have just written it). */
  private lookUpToken(): boolean {
    if (this.token?.source === 'option') return true;
    const { token, tokenFile } = this.options;
    const found = findToken({ token, tokenFile });
    if (found?.warning && found.path !== this.token?.path) this.options.log?.(found.warning);
    // Read again at each registration: a head that restarted with a new token is rejoined with it.
    if (found) this.token = found;
    return this.token !== undefined;
  }

  private openCommands(): void {
    const stream = this.client.Commands({
      node_id: this.nodeId,
      session_id: this.session!.id,
    }) as grpc.ClientReadableStream<Command>;
    this.commands = stream;
    stream.on('data', (cmd: Command) => this.onCommand(cmd));
    stream.on('error', (err: Error) => this.headLost(stream, `commands stream failed: ${err.message}`));
    stream.on('end', () => this.headLost(stream, 'the head ended the commands stream'));
  }

  private onCommand(cmd: Command): void {
    if ('start' in cmd && cmd.start) this.startActor(cmd.start);
    else if ('kill' in cmd && cmd.kill) this.actors.get(cmd.kill.actor_id)?.child.kill('SIGKILL');
  }

  private startActor(cmd: StartActorCommand): void {
    const metadata = new grpc.Metadata();
    metadata.set(ACTOR_ID_KEY, cmd.actor_id);
    metadata.set(NODE_ID_KEY, this.nodeId);
    const stream = new StreamChannel('head', this.client.ActorChannel(metadata));
    const modulePath = cmd.module_path.startsWith('file:') ? fileURLToPath(cmd.module_path) : cmd.module_path;
    if (modulePath && !existsSync(modulePath)) {
      return stream.shutdown(
        `node ${this.nodeId}: the application module ${modulePath} is not on this node; ` +
          'the code must be at the same path on every node (same image or checkout)',
      );
    }
    const env: Record<string, string> = { FLOTILLA_NODE_ID: this.nodeId };
    if (cmd.gpu_ids.length > 0) {
      env.CUDA_VISIBLE_DEVICES = cudaVisibleDevices(
        { cpus: 0, memoryMb: 0, gpuShares: cmd.gpu_ids.map((id) => ({ id, share: 1 })) },
        process.env.CUDA_VISIBLE_DEVICES,
      );
    }
    const child = spawnActorProcess(cmd.actor_id, env, this.options.workingDir);
    const ipc = new IpcChannel(child);
    const bridge = new ActorBridge(ipc);
    this.actors.set(cmd.actor_id, { child, bridge });
    ipc.onClose((reason) => {
      this.actors.delete(cmd.actor_id);
      bridge.detach(`node ${this.nodeId}: replica ${reason}`);
    });
    this.bridge(cmd.actor_id, bridge, stream);
    this.options.log?.(
      `replica ${cmd.actor_id} started (pid ${child.pid}${env.CUDA_VISIBLE_DEVICES ? `, CUDA_VISIBLE_DEVICES=${env.CUDA_VISIBLE_DEVICES}` : ''})`,
    );
  }

  /**
   * Connects a replica to the head's stream. A stream the head closes while it is still connected (a
   * kill, a start timeout) ends the replica; one that breaks with the head leaves it for re-adoption.
   */
  private bridge(actorId: string, bridge: ActorBridge, stream: StreamChannel): void {
    bridge.attach(stream, () => {
      const commands = this.commands;
      setTimeout(() => {
        if (commands && this.commands === commands) this.actors.get(actorId)?.child.kill('SIGKILL');
      }, LOSS_SETTLE_MS);
    });
  }

  /** After registering: reopen the streams of the replicas the head re-adopts, kill the others. */
  private reattach(adopt: Set<string>): void {
    clearTimeout(this.orphanTimer);
    for (const [id, hosted] of this.actors) {
      if (hosted.bridge.attached) continue;
      if (!adopt.has(id)) {
        hosted.child.kill('SIGKILL');
        continue;
      }
      const metadata = new grpc.Metadata();
      metadata.set(ACTOR_ID_KEY, id);
      metadata.set(NODE_ID_KEY, this.nodeId);
      this.bridge(id, hosted.bridge, new StreamChannel('head', this.client.ActorChannel(metadata)));
      this.options.log?.(`replica ${id} re-adopted by the head (pid ${hosted.child.pid})`);
    }
  }

  private heartbeat(): void {
    const session = this.session;
    if (!session) return;
    this.client.Heartbeat(
      { node_id: this.nodeId, session_id: session.id, actors: this.actors.size },
      { deadline: Date.now() + session.intervalMs * 2 },
      (err: grpc.ServiceError | null, reply: HeartbeatReply) => {
        // A failed heartbeat is the head's to count; the commands stream reports a lost head.
        if (!err && !reply.known && this.session === session)
          this.headLost(this.commands, 'the head no longer knows this node');
      },
    );
  }

  private headLost(stream: grpc.ClientReadableStream<Command> | undefined, why: string): void {
    if (this.closed || stream !== this.commands) return;
    this.options.log?.(`node ${this.nodeId} lost the head: ${why}`);
    this.leave();
    for (const { bridge } of this.actors.values()) bridge.detach(`node ${this.nodeId} lost the head: ${why}`);
    const graceMs = this.options.orphanGraceMs ?? 60_000;
    if (graceMs <= 0 || this.actors.size === 0) return void this.killAll().then(() => this.rejoin());
    this.options.log?.(`keeping ${this.actors.size} replica(s) for ${graceMs / 1000} s for the head to re-adopt`);
    clearTimeout(this.orphanTimer);
    this.orphanTimer = setTimeout(() => {
      const orphans = [...this.actors.values()].filter((a) => !a.bridge.attached);
      if (orphans.length > 0) this.options.log?.(`killing ${orphans.length} replica(s) nobody re-adopted`);
      for (const a of orphans) a.child.kill('SIGKILL');
    }, graceMs);
    void this.rejoin();
  }

  private async rejoin(): Promise<void> {
    for (let delayMs = 500; this.options.reconnect !== false && !this.closed; delayMs = Math.min(delayMs * 2, 5000)) {
      await new Promise((r) => setTimeout(r, delayMs));
      if (this.closed) return;
      try {
        return await this.join(delayMs * 4);
      } catch (err) {
        this.options.log?.(`node ${this.nodeId}: still no head (${(err as Error).message})`);
      }
    }
  }

  private leave(): void {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    this.session = undefined;
    const stream = this.commands;
    this.commands = undefined;
    stream?.cancel();
  }

  private async killAll(): Promise<void> {
    await Promise.all(
      [...this.actors.values()].map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    this.actors.clear();
  }
}
