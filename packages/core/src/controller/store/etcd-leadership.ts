/**
 * Leader election among heads with etcd's election recipe (etcd3's Election: each candidate puts a key
 * under `<prefix>election/heads/` bound to its lease, and the oldest key leads). A leader killed with
 * SIGKILL stops renewing its lease, which etcd expires after `leaseTtlS`; the next candidate then leads.
 * A leader that resigns (clean stop) hands over at once.
 *
 * The leader each head sees is polled (every 250 ms) rather than watched: a poll needs no re-arming
 * after etcd restarts, and the leader's identity is a small value.
 *
 * A lease lost while leading (etcd unreachable for longer than the lease can be renewed, 2 x TTL in
 * etcd3) means another head may lead: this head emits 'lost' and must stop acting as the leader. A
 * standby whose campaign fails (etcd down) campaigns again once etcd answers.
 */
import type { Campaign, Election, Etcd3 } from 'etcd3';
import type { EtcdControllerStore } from './etcd-store.js';
import { etcdCause } from './etcd-connection.js';
import type { HeadIdentity, Leadership, LeadershipEvent } from './leadership.js';
import type { EtcdLocation } from './state-url.js';

const POLL_MS = 250;
const RECAMPAIGN_MS = 1000;

export class EtcdLeadership implements Leadership {
  private readonly election: Election;
  private readonly listeners: ((event: LeadershipEvent) => void)[] = [];
  private campaignRef: Campaign | undefined;
  private self: HeadIdentity | undefined;
  private current: HeadIdentity | undefined;
  private currentRaw: string | undefined;
  private leading = false;
  private stopped = false;
  private poller: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(
    client: Etcd3,
    loc: EtcdLocation,
    /** Receives the fence (this head's election key) while it leads. */
    private readonly store: EtcdControllerStore,
    private readonly log: (line: string) => void = () => {},
  ) {
    this.election = client.namespace(loc.prefix).election('heads', loc.leaseTtlS);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  leader(): HeadIdentity | undefined {
    return this.leading ? this.self : this.current;
  }

  on(listener: (event: LeadershipEvent) => void): void {
    this.listeners.push(listener);
  }

  async campaign(self: HeadIdentity): Promise<void> {
    this.self = self;
    await this.poll();
    this.poller = setInterval(() => void this.poll(), POLL_MS);
    this.start();
  }

  async announce(self: HeadIdentity): Promise<void> {
    this.self = self;
    await this.campaignRef?.proclaim(JSON.stringify(self)).catch(() => {});
  }

  async resign(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poller);
    this.leading = false;
    this.store.setFence(undefined);
    await this.campaignRef?.resign().catch(() => {});
  }

  private start(): void {
    if (this.stopped || !this.self) return;
    const campaign = this.election.campaign(JSON.stringify(this.self));
    this.campaignRef = campaign;
    campaign.on('elected', () => {
      if (this.campaignRef !== campaign || this.stopped) return;
      void campaign.getCampaignKey().then(
        (key) => {
          if (this.campaignRef !== campaign || this.stopped) return;
          this.store.setFence(key);
          this.leading = true;
          this.emit({ type: 'elected' });
        },
        (err) => this.failed(campaign, err),
      );
    });
    campaign.on('error', (err) => this.failed(campaign, err));
  }

  private failed(campaign: Campaign, err: unknown): void {
    if (this.campaignRef !== campaign || this.stopped) return;
    this.campaignRef = undefined;
    void campaign.resign().catch(() => {});
    if (this.leading) {
      this.leading = false;
      this.store.setFence(undefined);
      this.emit({ type: 'lost', reason: `the leader's lease is lost (${etcdCause(err)})` });
      return;
    }
    this.log(`election: ${etcdCause(err)}; campaigning again`);
    setTimeout(() => this.start(), RECAMPAIGN_MS);
  }

  private async poll(): Promise<void> {
    if (this.polling || this.stopped) return;
    this.polling = true;
    try {
      const raw = await this.election.leader();
      if (raw === this.currentRaw) return;
      this.currentRaw = raw;
      this.current = parseIdentity(raw);
      if (!this.leading) this.emit({ type: 'leader-changed', leader: this.current });
    } catch {
      // etcd unreachable: keep the leader last seen (its proxies' routes stay usable).
    } finally {
      this.polling = false;
    }
  }

  private emit(event: LeadershipEvent): void {
    for (const l of this.listeners) l(event);
  }
}

function parseIdentity(raw: string | undefined): HeadIdentity | undefined {
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as HeadIdentity;
    return typeof v?.id === 'string' && typeof v.cluster === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}
