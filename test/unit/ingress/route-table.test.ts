import { describe, expect, it } from 'vitest';
import { matchRoute, normalizePrefix } from '../../../packages/core/src/ingress/route-table.js';
import type { RouteInfo } from '../../../packages/core/src/contract/routes.js';

const route = (app: string, routePrefix: string): RouteInfo => ({
  app,
  routePrefix,
  ingress: app,
  deployments: [app],
  methods: {},
  rawHttp: false,
});

describe('matchRoute', () => {
  const routes = [route('root', '/'), route('api', '/api'), route('v1', '/api/v1/')];

  it('picks the longest prefix on whole segments', () => {
    expect(matchRoute(routes, '/api/v1/chat')).toMatchObject({ route: { app: 'v1' }, rest: '/chat' });
    expect(matchRoute(routes, '/api/x')).toMatchObject({ route: { app: 'api' }, rest: '/x' });
    expect(matchRoute(routes, '/api')).toMatchObject({ route: { app: 'api' }, rest: '/' });
    expect(matchRoute(routes, '/apix')).toMatchObject({ route: { app: 'root' }, rest: '/apix' });
  });

  it('finds nothing without a root application', () => {
    expect(matchRoute([route('api', '/api')], '/other')).toBeUndefined();
  });

  it('normalizes prefixes', () => {
    expect(normalizePrefix('')).toBe('/');
    expect(normalizePrefix('api/')).toBe('/api');
    expect(normalizePrefix('/')).toBe('/');
  });
});
