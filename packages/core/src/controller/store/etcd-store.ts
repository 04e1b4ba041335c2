/**
 * The controller state in etcd: one JSON value at `<prefix>state` (a ControllerCheckpoint: applications
 * with their deploy requests, targets, versions, replicas on agents, autoscaling state, decisions, nodes).
 *
 * Only the leader writes, and each write is a transaction fenced on its election key: a head whose lease
 * expired (a standby may already lead) cannot overwrite the new leader's state; its save rejects with
 * FencedError and the head steps down. Saves coalesce (the latest state wins) and wait out an etcd that is
 * down or restarting, retrying every 500 ms, so an etcd restart loses nothing a later save would not carry.
 */
import type { Etcd3, Watcher } from 'etcd3';
import { ClusterError } from '../../errors.js';
import type { ControllerCheckpoint } from '../checkpoint.js';
import { isCheckpoint, withoutReplicas, type ControllerStore } from './controller-store.js';
import { etcdCause } from './etcd-connection.js';
import { describeStateLocation, type EtcdLocation } from './state-url.js';

/** The election key this head held is gone: it no longer leads, so it may not write. */
export class FencedError extends ClusterError {}

const RETRY_MS = 500;

export class EtcdControllerStore implements ControllerStore {
  readonly description: string;
  private readonly key: string;
  /** The leader's election key; saves are conditional on it existing. Undefined: not leading. */
  private fence: string | undefined;
  private pending: ControllerCheckpoint | undefined;
  private writing: Promise<void> | undefined;
  private readonly watchers = new Set<Watcher>();
  private closed = false;
  private outage = false;

  constructor(
    private readonly client: Etcd3,
    loc: EtcdLocation,
    /** Told once per etcd outage that saves are waiting, and when they resume. */
    private readonly log: (line: string) => void = () => {},
  ) {
    this.key = `${loc.prefix}state`;
    this.description = describeStateLocation(loc);
  }

  /** Set by the election when this head leads (its campaign key), cleared when it stops leading. */
  setFence(electionKey: string | undefined): void {
    this.fence = electionKey;
  }

  async load(): Promise<ControllerCheckpoint | undefined> {
    const text = await this.client.get(this.key).string();
    if (text === null) return undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      return isCheckpoint(parsed) ? parsed : undefined;
    } catch {
      return undefined;
    }
  }

  save(state: ControllerCheckpoint): Promise<void> {
    if (!this.fence) return Promise.reject(new FencedError('this head does not lead: it may not write the state'));
    this.pending = state;
    this.writing ??= this.drain();
    return this.writing;
  }

  async retire(state: ControllerCheckpoint): Promise<void> {
    if (!this.fence) return;
    await this.save(withoutReplicas(state));
  }

  watch(onChange: (state: ControllerCheckpoint) => void): () => void {
    let watcher: Watcher | undefined;
    let cancelled = false;
    void this.client
      .watch()
      .key(this.key)
      .create()
      .then((w) => {
        if (cancelled) return void w.cancel();
        watcher = w;
        this.watchers.add(w);
        w.on('put', (kv) => {
          try {
            const parsed: unknown = JSON.parse(kv.value.toString());
            if (isCheckpoint(parsed)) onChange(parsed);
          } catch {
            /* not ours to read */
          }
        });
        // etcd3 reconnects watchers itself; an error here is logged, not fatal.
        w.on('error', (err) => this.log(`state watch: ${etcdCause(err)}`));
      })
      .catch((err) => this.log(`cannot watch the state: ${etcdCause(err)}`));
    return () => {
      cancelled = true;
      if (watcher) {
        this.watchers.delete(watcher);
        void watcher.cancel().catch(() => {});
      }
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.watchers].map((w) => w.cancel().catch(() => {})));
    this.watchers.clear();
  }

  /** Writes the latest pending state until none is left; retries while etcd is unreachable. */
  private async drain(): Promise<void> {
    try {
      for (;;) {
        const state = this.pending;
        if (!state || this.closed) return;
        this.pending = undefined;
        await this.write(state);
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async write(state: ControllerCheckpoint): Promise<void> {
    const value = JSON.stringify(state);
    for (;;) {
      const fence = this.fence;
      if (!fence) throw new FencedError('this head no longer leads: the state was not written');
      try {
        const result = await this.client
          .if(fence, 'Version', '>', 0)
          .then(this.client.put(this.key).value(value))
          .options({ deadline: Date.now() + 3000 })
          .commit();
        if (!result.succeeded) {
          this.fence = undefined;
          throw new FencedError('the election key of this head is gone (its lease expired): another head may lead');
        }
        if (this.outage) this.log('etcd answers again: state saved');
        this.outage = false;
        return;
      } catch (err) {
        if (err instanceof FencedError) throw err;
        if (!this.outage) this.log(`cannot save the state to ${this.description} (${etcdCause(err)}); retrying`);
        this.outage = true;
        if (this.closed) throw err;
        await new Promise((r) => setTimeout(r, RETRY_MS));
        // A newer state replaces this one.
        if (this.pending) return;
      }
    }
  }
}
