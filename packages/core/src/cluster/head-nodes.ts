/**
 * The head's book of agents: one session per registered node (RegisterNode), its heartbeats, its
 * Commands stream (the node becomes placeable once it is open), its loss (stream broken, or heartbeats
 * missed: node-liveness.ts) and the recently dead, as `serve status` shows them.
 *
 * Separate from head.ts, which owns the gRPC server and the replicas' channels: this is the per-node
 * bookkeeping those channels hang off (a node's `actors` are closed when it is lost), with no knowledge
 * of replicas beyond that.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { LOCAL_NODE, type ClusterPlacement } from './cluster-placement.js';
import { NodeLivenessTable } from './node-liveness.js';
import { notLeading, type HeadFrontend } from './head-frontend.js';
import {
  CLUSTER_PROTOCOL_VERSION,
  type Command,
  type CommandsRequest,
  type HeartbeatRequest,
  type RegisterNodeReply,
  type RegisterNodeRequest,
} from './cluster-proto.js';
import type { StreamChannel } from '../actor/stream-channel.js';
import type { NodeResources } from '../controller/placement.js';
import type { StoredNode } from '../controller/checkpoint.js';
import type { NodeStatusInfo } from '../contract/status.js';

export interface NodeSession {
  id: string;
  sessionId: string;
  address: string;
  resources: NodeResources;
  labels: Record<string, string>;
  commands?: grpc.ServerWritableStream<CommandsRequest, Command>;
  /** The replicas' channels on this node: closed with the reason when the node is lost. */
  readonly actors: Map<string, StreamChannel>;
}

export interface HeadNodesOptions {
  placement: ClusterPlacement;
  /** The head's own node's resources (shown first by describe()). */
  local: NodeResources;
  /** Heartbeat period agents are told to keep, in ms. */
  intervalMs: number;
  missedLimit: number;
  log?: (line: string) => void;
  /** The head's frontend now (set after construction): its role and replica adoption. */
  frontend: () => HeadFrontend | undefined;
}

/** Dead nodes kept for `serve status`, newest first. */
const DEAD_KEPT = 20;

export class HeadNodes {
  private readonly sessions = new Map<string, NodeSession>();
  private readonly dead: NodeStatusInfo[] = [];
  private readonly liveness: NodeLivenessTable;
  private lastSweepMs = Date.now();

  constructor(private readonly options: HeadNodesOptions) {
    this.liveness = new NodeLivenessTable({ intervalMs: options.intervalMs, missedLimit: options.missedLimit });
  }

  get(nodeId: string): NodeSession | undefined {
    return this.sessions.get(nodeId);
  }

  /** Drops every node (their replicas' channels close). */
  loseAll(why: string): void {
    for (const id of [...this.sessions.keys()]) this.lose(id, why);
  }

  register(req: RegisterNodeRequest, cb: grpc.sendUnaryData<RegisterNodeReply>): void {
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
    const refusal = notLeading(this.options.frontend());
    if (refusal) return cb(refusal);
    // A live node's id cannot be taken: the second registration is refused and the node keeps its
    // replicas. One past its heartbeat limit (an agent that restarted before the head noticed) is dropped
    // and the id is free again.
    const held = this.sessions.get(req.node_id);
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
    this.sessions.set(session.id, session);
    this.liveness.register(session.id, Date.now());
    const survivors = req.actor_ids ?? [];
    const adopt = survivors.length > 0 ? (this.options.frontend()?.adopt?.(session.id, survivors) ?? []) : [];
    if (survivors.length > 0) {
      this.options.log?.(`node ${session.id} still runs ${survivors.length} replica(s); re-adopting ${adopt.length}`);
    }
    cb(null, {
      session_id: session.sessionId,
      heartbeat_interval_ms: this.options.intervalMs,
      head_version: String(CLUSTER_PROTOCOL_VERSION),
      adopt,
    });
  }

  heartbeat(req: HeartbeatRequest): boolean {
    const node = this.sessions.get(req.node_id);
    return node?.sessionId === req.session_id && this.liveness.beat(node.id, Date.now());
  }

  /** The node becomes placeable only once its Commands stream is open (StartActor needs it). */
  openCommands(call: grpc.ServerWritableStream<CommandsRequest, Command>): void {
    const node = this.sessions.get(call.request.node_id);
    if (!node || node.sessionId !== call.request.session_id) {
      return void call.destroy(
        Object.assign(new Error('unknown node session: register first'), { code: grpc.status.NOT_FOUND }),
      );
    }
    node.commands = call;
    const gone = (why: string) => {
      if (this.sessions.get(node.id) === node) this.lose(node.id, why);
    };
    call.on('cancelled', () => gone('connection lost'));
    call.on('error', (err) => gone(`connection lost (${err.message})`));
    call.on('close', () => gone('connection closed'));
    this.options.placement.addNode(node.id, node.resources);
    this.options.log?.(`node ${node.id} joined (${node.address}: ${describe(node.resources)})`);
  }

  /** Writes a command on the node's Commands stream; false when the node or its stream is gone. */
  send(nodeId: string, command: Command): boolean {
    const stream = this.sessions.get(nodeId)?.commands;
    if (!stream) return false;
    try {
      stream.write(command);
      return true;
    } catch {
      return false;
    }
  }

  /** The live agents, as the controller saves them with its state (the node registry). */
  stored(): StoredNode[] {
    return [...this.sessions.values()].map((n) => ({
      id: n.id,
      address: n.address,
      resources: { ...n.resources },
      labels: { ...n.labels },
    }));
  }

  /** The head's node, then live agents (join order), then recently dead ones with the reason. */
  describe(nowMs = Date.now()): NodeStatusInfo[] {
    // A node past its heartbeat limit is dropped now rather than shown DEAD while still listed as live.
    this.sweep();
    const { placement } = this.options;
    const localUsage = placement.usage(LOCAL_NODE)!;
    const out: NodeStatusInfo[] = [
      {
        id: LOCAL_NODE,
        state: 'ALIVE',
        address: 'head',
        resources: { ...this.options.local },
        free: freeOf(localUsage),
        replicas: localUsage.replicas,
        labels: {},
      },
    ];
    for (const n of this.sessions.values()) {
      const usage = placement.usage(n.id);
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

  /** Loses the nodes past their heartbeat limit (run periodically by the head). */
  sweep(): void {
    const now = Date.now();
    const { intervalMs } = this.options;
    const stalled = now - this.lastSweepMs > 2 * intervalMs;
    this.lastSweepMs = now;
    // After a stall of this process, heartbeats that arrived meanwhile are still unread: judge next time.
    if (stalled) return;
    for (const { nodeId, missed } of this.liveness.sweep(now)) {
      this.lose(nodeId, `missed ${missed} heartbeats (every ${intervalMs} ms)`);
    }
  }

  private lose(nodeId: string, why: string): void {
    const node = this.sessions.get(nodeId);
    if (!node) return;
    this.sessions.delete(nodeId);
    this.options.placement.removeNode(nodeId);
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
