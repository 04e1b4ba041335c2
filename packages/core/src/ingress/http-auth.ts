/**
 * The HTTP proxy's key check (policy in ingress-keys.ts): one onRequest hook decides what each path needs
 * and refuses before any route runs, so a request without a key learns nothing, not even whether a route
 * exists. What a request was let in as is kept beside it for http-raw.ts, which hands it to raw-HTTP
 * deployments as `HttpRequestLike.auth` (never from the client's headers).
 *
 *   /-/healthz, GET|HEAD {prefix}/health of a raw-HTTP app      open (liveness probes)
 *   /metrics, /-/status, /-/routes, /-/timeseries, /-/dashboard*  admin or metrics key
 *   /-/shutdown                                                 admin key
 *   anything else (applications)                                API or admin key
 *
 * A raw-HTTP class that renders the proxy's request errors itself (`handlesMalformedJson`) gets a refused
 * request with `authError` set instead of a 401 from here, so its clients see their protocol's error shape.
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { RequestAuth, RouteInfo } from '../contract/routes.js';
import { errorBody, mapError } from './error-mapping.js';
import type { Access, KeyRing } from './ingress-keys.js';
import { matchRoute } from './route-table.js';

export interface RequestAuthState {
  auth?: RequestAuth;
  authError?: string;
}

const states = new WeakMap<FastifyRequest, RequestAuthState>();

/** What the hook decided for `request` (empty when the proxy has no keys). */
export function requestAuthOf(request: FastifyRequest): RequestAuthState {
  return states.get(request) ?? {};
}

const MONITOR = new Set(['/metrics', '/-/status', '/-/routes', '/-/timeseries']);

/** What a path of the proxy's own (not an application's) needs; undefined for application paths. */
export function proxyRouteAccess(path: string): Access | undefined {
  if (path === '/-/healthz') return 'open';
  if (path === '/-/shutdown') return 'admin';
  if (MONITOR.has(path) || path === '/-/dashboard' || path.startsWith('/-/dashboard/')) return 'monitor';
  // Other '/-/' paths are no application's (the prefix is reserved): treat them as monitoring.
  if (path.startsWith('/-/')) return 'monitor';
  return undefined;
}

function isHealthProbe(route: RouteInfo, rest: string, method: string): boolean {
  return route.rawHttp && (method === 'GET' || method === 'HEAD') && (rest === '/health' || rest === '/health/');
}

export function authHook(keys: KeyRing, routes: () => RouteInfo[]): onRequestHookHandler {
  return (request, reply, done) => {
    const url = request.url;
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    // Fastify has routed the request already: judge the proxy's own routes by the pattern that matched
    // (so '/%2D/status' cannot pass for an application path); the catch-alls are the applications'.
    const pattern = request.routeOptions.url;
    const own =
      pattern === undefined || pattern === '/' || pattern === '/*' ? undefined : (proxyRouteAccess(pattern) ?? 'app');
    if (own !== undefined) {
      const verdict = keys.check(request.headers.authorization, own, `${request.method} ${path}`);
      if (verdict.ok) return done();
      return refuse(reply, verdict.error, pattern!.startsWith('/-/dashboard') ? 'basic' : 'bearer');
    }
    const match = matchRoute(routes(), path);
    if (match && isHealthProbe(match.route, match.rest, request.method)) return done();
    const verdict = keys.check(request.headers.authorization, 'app', `${request.method} ${path}`);
    if (verdict.ok) {
      if (verdict.auth) states.set(request, { auth: verdict.auth });
      return done();
    }
    if (match?.route.rawHttp && match.route.handlesMalformedJson) {
      states.set(request, { authError: verdict.error.message });
      return done();
    }
    refuse(reply, verdict.error, 'bearer');
  };
}

function refuse(reply: FastifyReply, err: Error, scheme: 'basic' | 'bearer'): void {
  const mapped = mapError(err);
  if (mapped.httpStatus === 401) {
    // Basic makes browsers prompt (the dashboard page); they then send the credentials to /-/status and
    // /-/timeseries themselves.
    reply.header(
      'www-authenticate',
      scheme === 'basic' ? 'Basic realm="flotilla", charset="UTF-8"' : 'Bearer realm="flotilla"',
    );
  }
  void reply
    .code(mapped.httpStatus)
    .type('application/json; charset=utf-8')
    .send(JSON.stringify(errorBody(mapped)));
}
