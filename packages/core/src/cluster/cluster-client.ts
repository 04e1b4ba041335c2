/**
 * A client of the cluster port (agent, `serve deploy`, `serve status HOST:PORT`): channel credentials
 * from the TLS options, and the cluster token on every call.
 */
import * as grpc from '@grpc/grpc-js';
import { ClusterError, UnauthenticatedError } from '../errors.js';
import { clientAuthInterceptor } from './cluster-auth.js';
import { clusterService, type ProxyStateReply } from './cluster-proto.js';
import { channelCredentials, channelOptions, tlsHint, type ClusterClientTls } from './cluster-tls.js';
import { CLUSTER_TOKEN_ENV, findToken, type TokenInput } from './cluster-token.js';
import type { ServeStatus } from '../contract/status.js';

export type ClusterClient = grpc.Client & Record<string, any>;

/** How a client authenticates: a token (or where to find it) and TLS. */
export interface ClusterClientAuth extends TokenInput {
  tls?: ClusterClientTls;
}

/** `token()` is read at every call, so an agent can pick up a token that appears after it started. */
export function clusterClient(address: string, token: () => string | undefined, tls?: ClusterClientTls): ClusterClient {
  const { Client } = clusterService();
  return new Client(address, channelCredentials(tls), {
    ...channelOptions(tls),
    interceptors: [clientAuthInterceptor(token)],
  }) as ClusterClient;
}

export function missingToken(address: string): ClusterError {
  return new ClusterError(
    `no cluster token for the head at ${address}: set ${CLUSTER_TOKEN_ENV}, pass --token-file, ` +
      'or run on the head machine (its token is in ~/.flotilla/cluster-token, or $FLOTILLA_CONFIG_DIR/cluster-token)',
    { address },
  );
}

/** Words for a refused or failed call: the cause, and for an auth or TLS failure what to check. */
export function explainCallError(e: grpc.ServiceError, usingTls: boolean): string {
  const details = e.details || e.message;
  if (e.code === grpc.status.UNAUTHENTICATED)
    return `${details} (the head refused this client's cluster token; use the token the head uses)`;
  if (e.code === grpc.status.UNAVAILABLE) {
    const hint = tlsHint(details, usingTls);
    if (hint) return `${details} (${hint})`;
  }
  return details;
}

/** The head's status through the cluster port (ProxyState, as agents' proxies read it). */
export async function fetchClusterStatus(address: string, auth: ClusterClientAuth): Promise<ServeStatus> {
  // None found still dials: an unreachable head is reported as such, a reachable one refuses the call.
  const token = findToken(auth)?.token;
  const client = clusterClient(address, () => token, auth.tls);
  try {
    const reply = await new Promise<ProxyStateReply>((resolve, reject) =>
      client.ProxyState(
        { node_id: '' },
        { deadline: Date.now() + 10_000 },
        (err: grpc.ServiceError | null, r: ProxyStateReply) => (err ? reject(err) : resolve(r)),
      ),
    );
    return JSON.parse(reply.status_json) as ServeStatus;
  } catch (err) {
    if (err instanceof SyntaxError) throw new ClusterError(`the head at ${address} sent a malformed status`);
    const e = err as grpc.ServiceError;
    if (e.code === grpc.status.UNAUTHENTICATED) {
      const why = token === undefined ? missingToken(address).message : explainCallError(e, auth.tls !== undefined);
      throw new UnauthenticatedError(`the head at ${address} refused to show its status: ${why}`, { address });
    }
    throw new ClusterError(
      `cannot read the status of the head at ${address}: ${explainCallError(e, auth.tls !== undefined)}`,
      { address },
    );
  } finally {
    client.close();
  }
}
