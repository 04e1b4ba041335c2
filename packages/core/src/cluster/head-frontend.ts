/**
 * What the cluster head serves besides its nodes (the agents' proxies and `serve deploy`), and how a head
 * that does not lead answers: the HeadFrontend seam ServeInstance and the CLI fill in, the leader-role
 * refusal (UNAVAILABLE while restoring, FAILED_PRECONDITION naming the leader on a standby), and the
 * ProxyState and Deploy answers built from them.
 *
 * Separate from head.ts, which owns the gRPC server and the nodes' replicas: these answers depend only
 * on the frontend and its role, not on any node state, and ha-head.ts' roles are what they interpret.
 */
import * as grpc from '@grpc/grpc-js';
import type { CallServer } from '../actor/rpc-peer.js';
import type { DeployReply, DeployRequest, ProxyStateReply } from './cluster-proto.js';
import type { ServeStatus } from '../contract/status.js';
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

/**
 * Why this head takes no agents or proxy traffic now (a standby, or a leader restoring), as a gRPC
 * error carrying the leader's address; undefined when it leads.
 */
export function notLeading(frontend: HeadFrontend | undefined): grpc.ServiceError | undefined {
  const role = frontend?.role?.();
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

/** ProxyState: the routes and status the agents' proxies serve from. */
export function answerProxyState(frontend: HeadFrontend | undefined, cb: grpc.sendUnaryData<ProxyStateReply>): void {
  if (!frontend) return cb({ code: grpc.status.UNAVAILABLE, details: 'the head is starting' });
  // A standby answers with what its own proxies serve (the leader's routes, leader: false), so that
  // `serve status` works against any head; a leader still restoring has nothing to show yet.
  if (frontend.role?.().restoring) return cb(notLeading(frontend) ?? null);
  cb(null, {
    routes_json: JSON.stringify(frontend.routes()),
    status_json: JSON.stringify(frontend.status()),
  });
}

/** Deploy: applied by the leader, forwarded to it by a standby, refused while restoring. */
export function answerDeploy(
  frontend: HeadFrontend | undefined,
  req: DeployRequest,
  cb: grpc.sendUnaryData<DeployReply>,
): void {
  const role = frontend?.role?.();
  const forward = frontend?.forwardDeploy;
  if (role && !role.leading) {
    if (!forward || !role.leader) return cb(notLeading(frontend) ?? null);
    return void forward(req).then(
      (reply) => cb(null, reply),
      (err: grpc.ServiceError) =>
        cb({
          code: typeof err.code === 'number' ? err.code : grpc.status.UNAVAILABLE,
          details: `forwarded to the leader at ${role.leader}: ${err.details || err.message}`,
        }),
    );
  }
  if (role?.restoring) return cb(notLeading(frontend) ?? null);
  const deploy = frontend?.deploy;
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
