/**
 * Opens a head's etcd state: one client (checked to answer, else a ClusterError naming the address),
 * the store and the election on it, and the close that releases all three.
 */
import { connectEtcd } from './etcd-connection.js';
import { EtcdLeadership } from './etcd-leadership.js';
import { EtcdControllerStore } from './etcd-store.js';
import type { EtcdLocation } from './state-url.js';

export interface EtcdState {
  store: EtcdControllerStore;
  leadership: EtcdLeadership;
  /** Resigns (a standby takes over at once), stops watching and closes the client. */
  close(): Promise<void>;
}

export async function openEtcdState(loc: EtcdLocation, log: (line: string) => void = () => {}): Promise<EtcdState> {
  const client = await connectEtcd(loc);
  const store = new EtcdControllerStore(client, loc, log);
  const leadership = new EtcdLeadership(client, loc, store, log);
  return {
    store,
    leadership,
    close: async () => {
      await leadership.resign();
      await store.close();
      client.close();
    },
  };
}
