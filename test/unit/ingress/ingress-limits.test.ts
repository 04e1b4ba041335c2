/**
 * The ingress's pure policy: the connection limits' defaults as Node's server gets them, the key ring's
 * verdicts (who may reach what), credentials (Bearer and Basic), JSON depth, and the config file's proxy
 * sections. Plain data in, plain data out.
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { resolveServerOptions } from '../../../packages/core/src/ingress/http-server-options.js';
import { KeyRing, credentialOf } from '../../../packages/core/src/ingress/ingress-keys.js';
import { exceedsJsonDepth } from '../../../packages/core/src/ingress/json-depth.js';
import { proxyRouteAccess } from '../../../packages/core/src/ingress/http-auth.js';
import { mergeKeys } from '../../../packages/core/src/ingress/declared-keys.js';
import { parseServeConfig } from '../../../packages/core/src/config.js';
import { adminKeyFrom } from '../../../packages/core/src/cli/ingress-options.js';

describe('connection limits', () => {
  it('defaults cut stalled, drip-fed and silent requests and idle connections within 30 s', () => {
    const o = resolveServerOptions();
    expect(o).toEqual({
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      keepAliveTimeout: 20_000,
      connectionsCheckingInterval: 1000,
      maxRequestsPerSocket: 0,
      maxConnections: 1024,
    });
    // Node notices a timed-out request at the next check: the worst case stays within 30 s + 1 s.
    expect(o.requestTimeout + o.connectionsCheckingInterval).toBeLessThanOrEqual(31_000);
  });

  it('keeps headers within the request deadline and checks often enough for small timeouts', () => {
    const o = resolveServerOptions({ headersTimeoutMs: 5000, bodyTimeoutMs: 800, keepAliveTimeoutMs: 300 });
    expect(o.headersTimeout).toBe(800);
    expect(o.connectionsCheckingInterval).toBe(400);
    expect(resolveServerOptions({ bodyTimeoutMs: 0 }).requestTimeout).toBe(0);
    expect(() => resolveServerOptions({ maxConnections: 0 })).toThrow(/maxConnections/);
    expect(() => resolveServerOptions({ headersTimeoutMs: -1 })).toThrow(/headersTimeoutMs/);
  });
});

describe('KeyRing', () => {
  const ring = new KeyRing({ apiKeys: ['api-key-001'], adminKeys: ['admin-key-01'], metricsKeys: ['metrics-key-1'] });
  const as = (key: string | undefined, access: Parameters<KeyRing['check']>[1]) => {
    const v = ring.check(key === undefined ? undefined : `Bearer ${key}`, access);
    return v.ok ? (v.auth?.role ?? 'open') : v.error.code;
  };

  it('lets nothing through without a key but the open routes', () => {
    for (const access of ['app', 'monitor', 'admin'] as const) expect(as(undefined, access)).toBe('UNAUTHENTICATED');
    expect(as(undefined, 'open')).toBe('open');
    expect(as('wrong-key-001', 'app')).toBe('UNAUTHENTICATED');
  });

  it('gives each kind of key its routes and no others', () => {
    expect([as('api-key-001', 'app'), as('api-key-001', 'monitor'), as('api-key-001', 'admin')]).toEqual([
      'api',
      'FORBIDDEN',
      'FORBIDDEN',
    ]);
    expect([as('metrics-key-1', 'app'), as('metrics-key-1', 'monitor'), as('metrics-key-1', 'admin')]).toEqual([
      'FORBIDDEN',
      'metrics',
      'FORBIDDEN',
    ]);
    expect([as('admin-key-01', 'app'), as('admin-key-01', 'monitor'), as('admin-key-01', 'admin')]).toEqual([
      'admin',
      'admin',
      'admin',
    ]);
  });

  it('names keys by a digest prefix (the LLM guard names them alike) and gives a shared key its strongest role', () => {
    const v = ring.check('Bearer api-key-001', 'app');
    const digest = createHash('sha256').update('api-key-001').digest('hex');
    expect(v.ok && v.auth).toEqual({ role: 'api', keyId: `key-${digest.slice(0, 12)}` });
    const both = new KeyRing({ apiKeys: ['shared-key-1'], adminKeys: ['shared-key-1'] });
    expect(both.check('Bearer shared-key-1', 'admin').ok).toBe(true);
  });

  it('checks nothing without keys, and refuses short keys', () => {
    const open = new KeyRing({});
    expect(open.enabled).toBe(false);
    expect(open.check(undefined, 'admin')).toEqual({ ok: true });
    expect(() => new KeyRing({ apiKeys: ['short'] })).toThrow(/at least 8/);
  });

  it('reads Bearer and Basic credentials (Basic: the password, else the user)', () => {
    expect(credentialOf('Bearer abc.def')).toBe('abc.def');
    expect(credentialOf(`Basic ${Buffer.from('ops:the-key').toString('base64')}`)).toBe('the-key');
    expect(credentialOf(`Basic ${Buffer.from('the-key:').toString('base64')}`)).toBe('the-key');
    expect(credentialOf('the-key')).toBeUndefined();
    expect(credentialOf(undefined)).toBeUndefined();
  });

  it("classifies the proxy's own routes", () => {
    expect(proxyRouteAccess('/-/healthz')).toBe('open');
    expect(proxyRouteAccess('/-/shutdown')).toBe('admin');
    for (const p of ['/metrics', '/-/status', '/-/routes', '/-/timeseries', '/-/dashboard', '/-/dashboard/charts.js'])
      expect(proxyRouteAccess(p)).toBe('monitor');
    expect(proxyRouteAccess('/v1/models')).toBeUndefined();
  });

  it('merges key lists from several sources', () => {
    expect(mergeKeys({ apiKeys: ['a1234567'] }, { apiKeys: ['a1234567', 'b1234567'], adminKeys: [] })).toEqual({
      apiKeys: ['a1234567', 'b1234567'],
    });
  });
});

describe('the key serve status / shutdown send', () => {
  it('is --key-file, else FLOTILLA_ADMIN_KEY, else none', () => {
    expect(adminKeyFrom(undefined, { FLOTILLA_ADMIN_KEY: 'from-env-key' })).toBe('from-env-key');
    expect(adminKeyFrom(undefined, {})).toBeUndefined();
    expect(() => adminKeyFrom('/nonexistent/key-file', {})).toThrow(/--key-file/);
  });
});

describe('JSON depth', () => {
  it('counts nesting outside strings only', () => {
    expect(exceedsJsonDepth('[[[1]]]', 3)).toBe(false);
    expect(exceedsJsonDepth('[[[[1]]]]', 3)).toBe(true);
    expect(exceedsJsonDepth('{"a":{"b":{"c":1}}}', 3)).toBe(false);
    expect(exceedsJsonDepth('["[[[[[[", "\\"[[[["]', 2)).toBe(false);
    expect(exceedsJsonDepth('['.repeat(100_000))).toBe(true);
  });
});

describe('config file proxy sections', () => {
  it('reads tls, auth and the HTTP limits (snake_case)', () => {
    const c = parseServeConfig(
      [
        'http_options: { port: 8443, max_connections: 64, body_timeout_ms: 5000, tls: { cert: c.pem, key: k.pem } }',
        'grpc_options: { port: 9443, max_connection_idle_ms: 10000 }',
        'tls: { cert: both.pem, key: both-key.pem }',
        'auth: { api_key_file: api.txt, admin_key_file: admin.txt, metrics_key_file: metrics.txt }',
        'applications: []',
      ].join('\n'),
    );
    expect(c.httpOptions).toEqual({
      port: 8443,
      maxConnections: 64,
      bodyTimeoutMs: 5000,
      tls: { cert: 'c.pem', key: 'k.pem' },
    });
    expect(c.grpcOptions?.maxConnectionIdleMs).toBe(10_000);
    expect(c.tls).toEqual({ cert: 'both.pem', key: 'both-key.pem' });
    expect(c.auth).toEqual({ apiKeyFile: 'api.txt', adminKeyFile: 'admin.txt', metricsKeyFile: 'metrics.txt' });
  });

  it('names a wrong proxy option', () => {
    expect(() => parseServeConfig('http_options: { max_conections: 4 }\napplications: []')).toThrow(
      /unknown http_options key 'maxConections'/,
    );
    expect(() => parseServeConfig('tls: { cert: a.pem }\napplications: []')).toThrow(/tls.key/);
    expect(() => parseServeConfig('auth: { api_keys: [a] }\napplications: []')).toThrow(/unknown auth key/);
    expect(() => parseServeConfig('http_options: { max_connections: -3 }\napplications: []')).toThrow(/maxConnections/);
  });
});
