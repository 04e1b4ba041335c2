/**
 * Entry of every replica, in a worker thread or a child process (started by actor-bootstrap.mjs after
 * registering tsx, so that user modules load as TypeScript by path). Wires the channel to the parent:
 * data-plane messages to an RpcPeer serving the Replica, control calls to comlink.
 */
import { isMainThread, parentPort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { IpcChannel, PortChannel, comlinkEndpoint, type Channel } from './channel.js';
import { RpcPeer } from './rpc-peer.js';
import { Replica } from '../replica/replica.js';
import type { ReplicaControl } from './actor-ref.js';

const channel: Channel = isMainThread ? new IpcChannel(process) : new PortChannel(parentPort!);
const replica = new Replica();
const peer = new RpcPeer(channel, replica, (link) => replica.onLink(link));
replica.attach(peer);
const control: ReplicaControl = {
  initialize: (init) => replica.initialize(init),
  checkHealth: () => replica.checkHealth(),
  stats: () => replica.stats(),
  reconfigure: (config) => replica.reconfigure(config),
  collectMetrics: () => replica.collectMetrics(),
  drain: (timeoutMs) => replica.drain(timeoutMs),
  dispose: () => replica.dispose(),
  listen: () => replica.listen(),
};
Comlink.expose(
  control,
  comlinkEndpoint(channel, () => replica.flush()),
);
// A child whose parent is gone must not linger (threads end with their process anyway).
channel.onClose(() => process.exit(0));
