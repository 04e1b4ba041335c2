/**
 * Which head leads (runs the controller, takes agents and deploys). The embedded default has one head,
 * always the leader; etcd-leadership.ts elects one among several heads with an etcd lease.
 */

/** What a head announces when it campaigns, so that others can reach the leader. */
export interface HeadIdentity {
  /** Unique per head process (host:pid by default). */
  id: string;
  /** Its cluster port, 'host:port', where agents, node proxies and `serve deploy` reach it. */
  cluster: string;
  /** Its HTTP proxy, when it has one. */
  http?: string;
}

export type LeadershipEvent =
  /** This head now leads. */
  | { type: 'elected' }
  /** Another head leads now (or nobody, `leader` undefined, while the lease of a dead one runs out). */
  | { type: 'leader-changed'; leader: HeadIdentity | undefined }
  /** This head led and no longer does (its lease expired): it must stop acting as the leader. */
  | { type: 'lost'; reason: string };

export interface Leadership {
  readonly isLeader: boolean;
  /** The leading head as last seen (this one when it leads). */
  leader(): HeadIdentity | undefined;
  /** Starts campaigning; events follow. Rejects when the election cannot be reached at all. */
  campaign(self: HeadIdentity): Promise<void>;
  /** Updates what this head announces (its HTTP address is known only once its proxy listens). */
  announce(self: HeadIdentity): Promise<void>;
  on(listener: (event: LeadershipEvent) => void): void;
  /** Steps down (a standby takes over at once rather than after the lease) and stops watching. */
  resign(): Promise<void>;
}

/** One head, always the leader (the embedded default: no election). */
export class SoleLeadership implements Leadership {
  private self: HeadIdentity | undefined;
  private readonly listeners: ((event: LeadershipEvent) => void)[] = [];

  get isLeader(): boolean {
    return this.self !== undefined;
  }

  leader(): HeadIdentity | undefined {
    return this.self;
  }

  async campaign(self: HeadIdentity): Promise<void> {
    this.self = self;
    for (const l of this.listeners) l({ type: 'elected' });
  }

  async announce(self: HeadIdentity): Promise<void> {
    this.self = self;
  }

  on(listener: (event: LeadershipEvent) => void): void {
    this.listeners.push(listener);
  }

  async resign(): Promise<void> {}
}
