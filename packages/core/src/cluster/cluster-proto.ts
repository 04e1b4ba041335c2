/**
 * protos/cluster.proto loaded once (proto-loader), with the shapes its messages have in JavaScript.
 * Field names stay snake_case (keepCase) so they read as in the proto.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const CLUSTER_PROTO_PATH = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../../protos/cluster.proto',
);

/** Head and agents must speak the same version; bump it on any incompatible change of cluster.proto. */
export const CLUSTER_PROTOCOL_VERSION = 2;

/** Default port the head accepts agents on. */
export const DEFAULT_CLUSTER_PORT = 9100;

export interface WireResources {
  cpus: number;
  gpus: number;
  memory_mb: number;
}

export interface RegisterNodeRequest {
  node_id: string;
  address: string;
  resources: WireResources;
  labels: Record<string, string>;
  protocol_version: number;
  pid: number;
  actor_ids?: string[];
}
export interface RegisterNodeReply {
  session_id: string;
  heartbeat_interval_ms: number;
  head_version: string;
  adopt?: string[];
}
export interface HeartbeatRequest {
  node_id: string;
  session_id: string;
  actors: number;
}
export interface HeartbeatReply {
  known: boolean;
}
export interface CommandsRequest {
  node_id: string;
  session_id: string;
}
export interface StartActorCommand {
  actor_id: string;
  gpu_ids: number[];
  module_path: string;
}
export interface KillActorCommand {
  actor_id: string;
  reason: string;
}
export type Command = { start: StartActorCommand; command?: 'start' } | { kill: KillActorCommand; command?: 'kill' };

export interface ProxyStateRequest {
  node_id: string;
}
export interface ProxyStateReply {
  routes_json: string;
  status_json: string;
}
export interface DeployRequest {
  module_path: string;
  export_name: string;
  args: Record<string, string>;
  name: string;
  route_prefix: string;
  config_text: string;
  config_source: string;
  timeout_s: number;
}
export interface DeployReply {
  name: string;
  route_prefix: string;
  http: string;
}

/** Metadata keys on an ActorChannel (actor and node) or ProxyChannel (node) call. */
export const ACTOR_ID_KEY = 'x-flotilla-actor-id';
export const NODE_ID_KEY = 'x-flotilla-node-id';

let loaded: { service: grpc.ServiceDefinition; Client: grpc.ServiceClientConstructor } | undefined;

export function clusterService(): { service: grpc.ServiceDefinition; Client: grpc.ServiceClientConstructor } {
  if (!loaded) {
    const def = protoLoader.loadSync(CLUSTER_PROTO_PATH, {
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      flotilla: { cluster: { v1: { Cluster: grpc.ServiceClientConstructor } } };
    };
    const Client = pkg.flotilla.cluster.v1.Cluster;
    loaded = { service: Client.service, Client };
  }
  return loaded;
}
