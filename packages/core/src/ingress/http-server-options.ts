/**
 * The HTTP proxy's connection limits, resolved to the Node http(s).Server options that enforce them.
 * Pure: options in, server options out (the defaults are tested on this function). Node itself answers
 * 408 and closes the socket when a request's headers or its whole body take too long, closes keep-alive
 * connections idle for keepAliveTimeout, and drops connections above maxConnections; it checks the two
 * request timeouts every connectionsCheckingInterval, which Node defaults to 30 s and would double the
 * bound, so it is set from the timeouts here.
 *
 * What each defends against: a client that opens a connection and sends nothing (headersTimeout), one that
 * sends headers a line at a time (headersTimeout), one that stalls or drip-feeds its body (bodyTimeout: a
 * deadline on the whole request, however steadily bytes arrive), idle keep-alive connections
 * (keepAliveTimeout), and connection floods (maxConnections). None of them limits a response: a stream
 * may run as long as its client reads it (the proxy's own requestTimeoutMs bounds the time to its first chunk).
 */
import { DeploymentConfigError } from '../errors.js';

export interface HttpConnectionLimits {
  /** Time for a request's headers to arrive, counted from the connection's first byte (or its opening). Default: 10000 ms. */
  headersTimeoutMs?: number;
  /** Time to receive a whole request, headers and body; past it the client gets 408 and the connection closes. 0: none. Default: 30000 ms. */
  bodyTimeoutMs?: number;
  /** Idle time before a keep-alive connection is closed. Default: 20000 ms. */
  keepAliveTimeoutMs?: number;
  /** Most connections open at once; more are closed as they arrive. Default: 1024. */
  maxConnections?: number;
  /** Requests one keep-alive connection may carry before it is closed (0: no limit). Default: 0. */
  maxRequestsPerSocket?: number;
}

export const CONNECTION_DEFAULTS = {
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 20_000,
  maxConnections: 1024,
  maxRequestsPerSocket: 0,
} as const;

/** What node's http.createServer / https.createServer take, plus maxConnections (a property of the server). */
export interface ResolvedServerOptions {
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  connectionsCheckingInterval: number;
  maxRequestsPerSocket: number;
  maxConnections: number;
}

export function resolveServerOptions(o: HttpConnectionLimits = {}): ResolvedServerOptions {
  const body = check('bodyTimeoutMs', o.bodyTimeoutMs ?? CONNECTION_DEFAULTS.bodyTimeoutMs, 0);
  const headers = check('headersTimeoutMs', o.headersTimeoutMs ?? CONNECTION_DEFAULTS.headersTimeoutMs, 1);
  const keepAlive = check('keepAliveTimeoutMs', o.keepAliveTimeoutMs ?? CONNECTION_DEFAULTS.keepAliveTimeoutMs, 1);
  const maxConnections = check('maxConnections', o.maxConnections ?? CONNECTION_DEFAULTS.maxConnections, 1);
  const perSocket = check(
    'maxRequestsPerSocket',
    o.maxRequestsPerSocket ?? CONNECTION_DEFAULTS.maxRequestsPerSocket,
    0,
  );
  // Node refuses headersTimeout > requestTimeout; the headers are part of the request anyway.
  const headersTimeout = body > 0 ? Math.min(headers, body) : headers;
  const shortest = Math.min(headersTimeout, body > 0 ? body : Number.POSITIVE_INFINITY);
  return {
    headersTimeout,
    requestTimeout: body,
    keepAliveTimeout: keepAlive,
    // A timed-out request is noticed within half its timeout, at most a second late.
    connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(shortest / 2))),
    maxRequestsPerSocket: perSocket,
    maxConnections,
  };
}

function check(name: string, value: number, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || !Number.isInteger(value))
    throw new DeploymentConfigError(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return value;
}
