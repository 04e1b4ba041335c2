/**
 * One of several heads that share their controller state (in etcd) and elect a leader (Kubernetes'
 * pattern: state in etcd, a leader elected with a lease). Each head is a full ServeInstance with a
 * cluster port and proxies; its role decides what runs:
 *
 *   standby     the controller does not run. The head's proxies serve from the leader's routing table
 *               through the leader's routers (a NodeProxyTarget on the leader's cluster port, as an
 *               agent's proxy does); its cluster port refuses agents, naming the leader, and forwards
 *               `serve deploy` to it; it watches the state.
 *   restoring   just elected: loads the state, starts the controller from it and deploys again the
 *               applications it lists. Agents are told to wait (UNAVAILABLE), so that none registers
 *               before the controller knows which of its replicas to re-adopt; the proxies still go
 *               through the old leader's routing table (requests are held, then reach this head).
 *   leading     agents register here (their replicas are re-adopted, not restarted); proxies serve
 *               from this head's own routers.
 *
 * A leader that loses its lease (etcd unreachable for longer than it can renew it) may have been
 * replaced, so it stops at once (`onLost`; the CLI exits, like Kubernetes' controllers): its agents keep
 * their replicas for the next leader to re-adopt.
 */
import os from 'node:os';
import type * as grpc from '@grpc/grpc-js';
import { NodeProxyTarget } from './node-proxy.js';
import { clusterClient, type ClusterClient } from './cluster-client.js';
import type { ClusterClientTls } from './cluster-tls.js';
import type { DeployReply, DeployRequest } from './cluster-proto.js';
import type { ServeInstance } from '../serve-instance.js';
import type { ControllerCheckpoint } from '../controller/checkpoint.js';
import type { ControllerStore } from '../controller/store/controller-store.js';
import type { HeadIdentity, Leadership, LeadershipEvent } from '../controller/store/leadership.js';

export type HaRole = 'standby' | 'restoring' | 'leading';

export interface HaHeadOptions {
  instance: ServeInstance;
  leadership: Leadership;
  store: ControllerStore;
  /**
   * Deploys again the applications of the restored state (restorableSources); resolves once each is in
   * the controller, before its replicas run (they are re-adopted when the agents register).
   */
  restore(instance: ServeInstance): Promise<void>;
  /** The cluster token, for this head's calls to the leader. */
  token: () => string | undefined;
  /** TLS for this head's calls to the leader's cluster port. Default: none. */
  clientTls?: ClusterClientTls;
  /** How long the proxies hold a request while no leader answers, in ms. Default: 60000. */
  holdMs?: number;
  /** The proxies send again a request cut by the leader's death (NodeProxyTargetOptions). Default: false. */
  retryAfterHeadLoss?: boolean;
  /** Unique per head. Default: host name and pid. */
  id?: string;
  log?: (line: string) => void;
  /** This head led and lost its lease. Default: logs it and shuts the instance down. */
  onLost?: (reason: string) => void;
}

export class HaHead {
  private roleNow: HaRole = 'standby';
  private readonly follower: NodeProxyTarget;
  private readonly clients = new Map<string, ClusterClient>();
  private lastSeen: ControllerCheckpoint | undefined;
  private stopWatch: (() => void) | undefined;
  private self!: HeadIdentity;
  /** When the last election resolved (this head's takeover started), for logs and the bench. */
  electedAtMs: number | undefined;
  /** When this head's restore finished and it took agents. */
  ledAtMs: number | undefined;

  constructor(private readonly options: HaHeadOptions) {
    const { instance } = options;
    const head = instance.cluster;
    if (!head?.frontend) throw new Error('HaHead needs a ServeInstance with a cluster head');
    this.follower = new NodeProxyTarget({
      client: () => this.leaderClient(),
      nodeId: `head-${process.pid}`,
      holdMs: options.holdMs,
      retryAfterHeadLoss: options.retryAfterHeadLoss,
      log: options.log,
    });
    head.frontend.role = () => ({
      leading: this.roleNow !== 'standby',
      restoring: this.roleNow === 'restoring',
      leader: options.leadership.leader()?.cluster,
    });
    head.frontend.forwardDeploy = (req) => this.forwardDeploy(req);
    instance.haStatus = () => ({
      leader: this.roleNow === 'leading',
      leaderHead: options.leadership.leader(),
      state: options.store.description,
    });
    instance.follow(this.follower);
    options.leadership.on((e) => this.onEvent(e));
  }

  get role(): HaRole {
    return this.roleNow;
  }

  /** Campaigns; resolves at once (a standby stays one until elected). `http`: this head's proxy. */
  async start(http?: string): Promise<void> {
    const cluster = await this.options.instance.cluster!.listening;
    this.self = { id: this.options.id ?? `${os.hostname()}:${process.pid}`, cluster: advertised(cluster), http };
    this.stopWatch = this.options.store.watch((s) => {
      this.lastSeen = s;
    });
    await this.options.leadership.campaign(this.self);
  }

  /** Stops watching and closes the connections to other heads (the instance is the caller's to shut down). */
  close(): void {
    this.stopWatch?.();
    this.follower.close();
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private onEvent(e: LeadershipEvent): void {
    const log = this.options.log ?? (() => {});
    if (e.type === 'leader-changed') {
      if (this.roleNow === 'standby')
        log(e.leader ? `standing by; the leader is ${e.leader.id} at ${e.leader.cluster}` : 'standing by; no leader');
      return;
    }
    if (e.type === 'lost') {
      log(`lost the leadership: ${e.reason}`);
      this.roleNow = 'standby';
      (this.options.onLost ?? ((reason) => void this.options.instance.shutdown().then(() => log(reason))))(e.reason);
      return;
    }
    void this.takeOver().catch((err) => log(`takeover failed: ${(err as Error).message}`));
  }

  /** Elected: restore the state, then take agents and serve from this head's own routers. */
  private async takeOver(): Promise<void> {
    const log = this.options.log ?? (() => {});
    this.electedAtMs = Date.now();
    this.roleNow = 'restoring';
    log(`elected leader (${this.self.id}); restoring the state from ${this.options.store.description}`);
    let state: ControllerCheckpoint | undefined;
    try {
      state = await this.options.store.load();
    } catch (err) {
      // etcd blinked: the state last seen through the watch is the leader's latest but for the last save.
      log(`cannot read the state (${(err as Error).message}); using the last one seen`);
      state = this.lastSeen;
    }
    const { instance } = this.options;
    const apps = state?.apps.length ?? 0;
    instance.lead(state);
    await this.options.restore(instance);
    this.roleNow = 'leading';
    this.ledAtMs = Date.now();
    // New requests go to this head's routers; those held in the follower reach it through its own port.
    instance.follow(undefined);
    log(`leading: ${apps} application(s) restored in ${this.ledAtMs - this.electedAtMs} ms; agents may register`);
  }

  /** A client to the leader (this head itself once it leads: requests held meanwhile land here). */
  private leaderClient(): ClusterClient | undefined {
    const address = this.options.leadership.leader()?.cluster;
    if (!address) return undefined;
    let c = this.clients.get(address);
    if (!c) {
      c = clusterClient(address, this.options.token, this.options.clientTls);
      this.clients.set(address, c);
    }
    return c;
  }

  private forwardDeploy(req: DeployRequest): Promise<DeployReply> {
    const client = this.leaderClient();
    if (!client) return Promise.reject(new Error('no leader elected yet'));
    return new Promise<DeployReply>((resolve, reject) =>
      client.Deploy(
        req,
        { deadline: Date.now() + ((req.timeout_s || 120) + 10) * 1000 },
        (err: grpc.ServiceError | null, reply: DeployReply) => (err ? reject(err) : resolve(reply)),
      ),
    );
  }
}

/** A cluster address others can dial: a wildcard bind is advertised under the host name. */
function advertised(address: string): string {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m) return address;
  const host = m[1]!.replace(/^\[|\]$/g, '');
  return host === '0.0.0.0' || host === '::' ? `${os.hostname()}:${m[2]}` : address;
}
