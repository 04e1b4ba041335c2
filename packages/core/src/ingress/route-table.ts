/**
 * Maps a request path to the application whose route prefix owns it (longest prefix wins, on whole
 * path segments: '/api' owns '/api' and '/api/x' but not '/apix').
 */
import type { RouteInfo } from '../contract/routes.js';

export interface RouteMatch {
  route: RouteInfo;
  /** The path below the prefix, always starting with '/'. */
  rest: string;
}

export function matchRoute(routes: readonly RouteInfo[], path: string): RouteMatch | undefined {
  let best: RouteMatch | undefined;
  let bestLength = -1;
  for (const route of routes) {
    const prefix = normalizePrefix(route.routePrefix);
    if (prefix.length <= bestLength) continue;
    if (prefix === '/') {
      best = { route, rest: path.startsWith('/') ? path : `/${path}` };
      bestLength = 1;
    } else if (path === prefix || path.startsWith(`${prefix}/`)) {
      best = { route, rest: path.slice(prefix.length) || '/' };
      bestLength = prefix.length;
    }
  }
  return best;
}

/** '/api/' → '/api', '' → '/'. */
export function normalizePrefix(prefix: string): string {
  const withSlash = prefix.startsWith('/') ? prefix : `/${prefix}`;
  return withSlash.length > 1 && withSlash.endsWith('/') ? withSlash.replace(/\/+$/, '') || '/' : withSlash;
}
