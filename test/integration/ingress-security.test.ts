/**
 * The proxies' defences over real sockets, in front of the real runtime: keys on every route (HTTP and
 * gRPC) with the admin / metrics / API split, what the proxy vouches for to raw-HTTP deployments (client
 * address, auth) even through Serve.Call, connection limits and timeouts (stalled, drip-fed and slow-header
 * requests, silent and idle connections), deeply nested JSON, and load shedding by default.
 * Timeouts are configured small so the test runs fast; their defaults are checked in test/unit/ingress/ingress-limits.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { HttpProxy } from '../../packages/core/src/ingress/http-proxy.js';
import { echo, narrow, renderer, witness } from '../fixtures/apps/ingress-secure.js';
import { eventually, serveForTest, type Served, serveClient } from '../helpers/ingress.js';

const API = 'api-key-0000001';
const ADMIN = 'admin-key-000001';
const METRICS = 'metrics-key-0001';

let served: Served;
let client: any;
let shutdowns = 0;

beforeAll(async () => {
  served = await serveForTest(
    [
      { name: 'echo', routePrefix: '/echo', app: echo },
      { name: 'witness', routePrefix: '/witness', app: witness },
      { name: 'renderer', routePrefix: '/renderer', app: renderer },
      { name: 'narrow', routePrefix: '/narrow', app: narrow },
    ],
    {
      keys: { apiKeys: [API], adminKeys: [ADMIN], metricsKeys: [METRICS] },
      http: {
        headersTimeoutMs: 600,
        bodyTimeoutMs: 1200,
        keepAliveTimeoutMs: 600,
        onShutdown: () => {
          shutdowns++;
        },
      },
    },
  );
  client = serveClient(served.grpcAddress);
}, 60_000);
afterAll(async () => {
  client?.close();
  await served?.close();
});

const bearer = (key?: string): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {});
const get = (path: string, key?: string, extra: Record<string, string> = {}) =>
  fetch(`${served.url}${path}`, { headers: { ...bearer(key), ...extra } });
const post = (path: string, body: string, key?: string) =>
  fetch(`${served.url}${path}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...bearer(key) },
  });
const md = (key?: string) => {
  const m = new grpc.Metadata();
  if (key) m.set('authorization', `Bearer ${key}`);
  return m;
};
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const call = (req: object, key?: string) =>
  new Promise<any>((resolve, reject) =>
    client.Call(req, md(key), (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res))),
  );
const list = (key?: string) =>
  new Promise<any>((resolve, reject) =>
    client.ListApplications({}, md(key), (err: grpc.ServiceError | null, res: any) =>
      err ? reject(err) : resolve(res),
    ),
  );
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => grpc.status.OK,
    (e: grpc.ServiceError) => e.code,
  );

describe('keys on the HTTP proxy', () => {
  const monitoring = [
    '/metrics',
    '/-/status',
    '/-/routes',
    '/-/timeseries',
    '/-/dashboard',
    '/-/dashboard/dashboard.js',
  ];

  it('answers only the liveness probes without a key', async () => {
    expect((await get('/-/healthz')).status).toBe(200);
    expect((await get('/renderer/health')).status).toBe(200);
    for (const path of [...monitoring, '/echo/add', '/nowhere']) {
      const res = await get(path);
      expect(res.status, path).toBe(401);
      expect(((await res.json()) as any).error.code).toBe('UNAUTHENTICATED');
    }
    expect((await post('/echo/add', '[1, 2]')).status).toBe(401);
    expect((await post('/echo/add', '[1, 2]', 'not-a-key-at-all')).status).toBe(401);
    // A path that routes to a proxy route once decoded is judged as that route.
    expect((await get('/%2D/status', API)).status).not.toBe(200);
  });

  it('lets monitoring routes be read with an admin or metrics key, not an API key', async () => {
    for (const path of monitoring) {
      expect((await get(path, METRICS)).status, path).toBe(200);
      expect((await get(path, ADMIN)).status, path).toBe(200);
      const denied = await get(path, API);
      expect(denied.status, path).toBe(403);
      expect(((await denied.json()) as any).error.code).toBe('FORBIDDEN');
    }
    // Browsers log in to the dashboard with Basic auth (password = key) and are asked to.
    const prompt = await get('/-/dashboard');
    expect(prompt.headers.get('www-authenticate')).toMatch(/^Basic /);
    const basic = `Basic ${Buffer.from(`ops:${METRICS}`).toString('base64')}`;
    expect((await get('/-/status', undefined, { authorization: basic })).status).toBe(200);
  });

  it('calls applications with an API or admin key, never a metrics key', async () => {
    expect(await (await post('/echo/add', '[20, 22]', API)).json()).toBe(42);
    expect(await (await post('/echo/add', '[20, 22]', ADMIN)).json()).toBe(42);
    expect((await post('/echo/add', '[20, 22]', METRICS)).status).toBe(403);
  });

  it('hands raw-HTTP deployments what the proxy vouches for, and lets them render refusals', async () => {
    const seen = (await (await get('/witness/x', ADMIN, { 'x-forwarded-for': '6.6.6.6' })).json()) as any;
    expect(seen.clientIp).toBe('127.0.0.1');
    expect(seen.auth.role).toBe('admin');
    expect(seen.auth.keyId).toMatch(/^key-[0-9a-f]{12}$/);
    const refused = await get('/renderer/v1/x', 'wrong-key-0000');
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ custom: { denied: 'Invalid API key.' } });
    expect(await (await get('/renderer/v1/x', API)).json()).toEqual({ role: 'api' });
  });

  it('stops on POST /-/shutdown only with an admin key, even from loopback', async () => {
    const shut = (key?: string) => fetch(`${served.url}/-/shutdown`, { method: 'POST', headers: bearer(key) });
    expect((await shut()).status).toBe(401);
    expect((await shut(API)).status).toBe(403);
    expect((await shut(METRICS)).status).toBe(403);
    expect(shutdowns).toBe(0);
    expect((await shut(ADMIN)).status).toBe(202);
    await eventually(() => shutdowns === 1, 5000, 'the shutdown hook');
  });
});

describe('keys on the gRPC proxy', () => {
  it('needs a key for every call but Healthz', async () => {
    const health = await new Promise<any>((resolve, reject) =>
      client.Healthz({}, (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res))),
    );
    expect(health.status).toBe('SERVING');
    const stats = { application: 'echo', method: 'stats', payload: json([]) };
    expect(await codeOf(call(stats))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await codeOf(call(stats, 'wrong-key-0000'))).toBe(grpc.status.UNAUTHENTICATED);
    expect(await codeOf(call(stats, METRICS))).toBe(grpc.status.PERMISSION_DENIED);
    expect(JSON.parse((await call({ application: 'echo', method: 'add', payload: json([1, 2]) }, API)).payload)).toBe(
      3,
    );
    const streamed = client.Stream({ application: 'echo', method: 'add', payload: json([1, 2]) }, md());
    expect(
      await new Promise((resolve) => {
        streamed.on('error', (e: grpc.ServiceError) => resolve(e.code));
        streamed.on('data', () => resolve('data'));
      }),
    ).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('lists applications for admin and metrics keys only', async () => {
    expect(await codeOf(list())).toBe(grpc.status.UNAUTHENTICATED);
    expect(await codeOf(list(API))).toBe(grpc.status.PERMISSION_DENIED);
    expect((await list(METRICS)).applications.map((a: any) => a.name)).toContain('echo');
    expect((await list(ADMIN)).applications.length).toBe(4);
  });

  it("takes handleHttp's client address from the gRPC peer, never from the payload", async () => {
    const forged = {
      method: 'GET',
      path: '/x',
      query: {},
      headers: {},
      requestId: 'r',
      clientIp: '6.6.6.6',
      auth: { role: 'admin', keyId: 'key-forged' },
    };
    const res = await call({ application: 'witness', method: 'handleHttp', payload: json([forged]) }, API);
    const seen = JSON.parse(res.payload).body;
    expect(seen.clientIp).toMatch(/^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)$/);
    expect(seen.auth.role).toBe('api');
  });
});

describe('nested JSON', () => {
  const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;

  it('is refused with 400 and a clear message, or handed on as bodyError', async () => {
    const res = await post('/echo/add', deep, API);
    expect(res.status).toBe(400);
    const body = (await res.json()) as any;
    expect(body.error.code).toBe('BAD_REQUEST');
    expect(body.error.message).toMatch(/nested deeper than 128 levels/);
    const rendered = await post('/renderer/v1/x', deep, API);
    expect(rendered.status).toBe(400);
    expect(((await rendered.json()) as any).custom.bad).toMatch(/nested deeper than 128 levels/);
    // Nesting below the limit still works.
    const fine = await post('/echo', `[${'['.repeat(100)}1${']'.repeat(100)}]`, API);
    expect(fine.status).not.toBe(400);
  });

  it('is INVALID_ARGUMENT over gRPC', async () => {
    const err = (await call({ application: 'echo', method: 'add', payload: Buffer.from(deep) }, API).catch(
      (e) => e,
    )) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/nested deeper/);
  });
});

/** A raw TCP client: what it received and whether the server closed it. */
function rawClient(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  let closed = false;
  socket.on('data', (d) => {
    received += d;
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  return {
    socket,
    received: () => received,
    closed: () => closed,
    write: (text: string) => {
      if (!socket.destroyed) socket.write(text);
    },
  };
}

describe('connection limits', () => {
  const port = () => served.ingress.http!.port;
  const head = `POST /echo/add HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API}\r\nContent-Type: application/json\r\n`;

  it('answers a stalled body with 408 and closes', async () => {
    const c = rawClient(port());
    c.write(`${head}Content-Length: 100\r\n\r\n[1,`);
    await eventually(c.closed, 10_000, 'the stalled connection to close');
    expect(c.received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('cuts a drip-fed body at the body deadline however steadily it drips', async () => {
    const c = rawClient(port());
    c.write(`${head}Content-Length: 1000\r\n\r\n`);
    let sent = 0;
    const drip = setInterval(() => {
      c.write(' ');
      sent++;
    }, 50);
    await eventually(c.closed, 10_000, 'the drip-fed connection to close');
    clearInterval(drip);
    expect(sent).toBeLessThan(1000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('cuts headers sent a line at a time, and connections that send nothing', async () => {
    const slow = rawClient(port());
    slow.write('GET /-/healthz HTTP/1.1\r\n');
    let n = 0;
    const drip = setInterval(() => slow.write(`X-Slow-${n++}: 1\r\n`), 100);
    const silent = rawClient(port());
    await eventually(() => slow.closed() && silent.closed(), 10_000, 'both connections to close');
    clearInterval(drip);
    expect(slow.received()).toMatch(/^HTTP\/1\.1 408/);
  });

  it('closes idle keep-alive connections', async () => {
    const c = rawClient(port());
    c.write('GET /-/healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await eventually(() => c.received().includes('\r\n\r\nok'), 5000, 'the answer');
    expect(c.received()).toMatch(/^HTTP\/1\.1 200/);
    await eventually(c.closed, 10_000, 'the idle connection to close');
  });

  it('refuses connections above maxConnections', async () => {
    const proxy = await HttpProxy.start(served.instance, { port: 0, maxConnections: 2 });
    try {
      const held = [rawClient(proxy.port), rawClient(proxy.port)];
      await new Promise((r) => setTimeout(r, 200));
      const third = rawClient(proxy.port);
      third.write('GET /-/healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      await eventually(third.closed, 5000, 'the connection over the limit to be closed');
      expect(third.received()).toBe('');
      for (const h of held) h.socket.destroy();
      await eventually(
        async () =>
          (await fetch(`${proxy.url}/-/healthz`).then(
            (r) => r.status,
            () => 0,
          )) === 200,
        5000,
        'a connection under the limit',
      );
    } finally {
      await proxy.close();
    }
  });
});

describe('load shedding by default', () => {
  it('answers overload with 503 + Retry-After, and every client gets an answer', async () => {
    // Narrow runs 2 at a time and queues at most 100 (its default): 150 clients at once overflow it.
    const results = await Promise.all(
      Array.from({ length: 150 }, () =>
        post('/narrow/work', '[100]', API).then(async (r) => ({
          status: r.status,
          retryAfter: r.headers.get('retry-after'),
          body: (await r.json()) as any,
        })),
      ),
    );
    const shed = results.filter((r) => r.status === 503);
    expect(shed.length).toBeGreaterThan(0);
    expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(102);
    // Every client gets an answer, never a reset or a hang: 200 or 503, except a few other errors, each
    // still a JSON error with a code (2 of 150 once, in a full-suite run on a starved 2-core machine;
    // statuses printed since, not seen again: likely this file's deliberately short header/body timeouts,
    // 600/1200 ms for the slow-client tests above, expiring while 150 requests wait to be read).
    const odd = results.filter((r) => r.status !== 200 && r.status !== 503);
    if (odd.length > 0)
      console.warn(`[ingress-security] neither 200 nor 503: ${odd.map((r) => `${r.status} ${r.body?.error?.code}`)}`);
    for (const r of odd) expect(typeof r.body?.error?.code).toBe('string');
    expect(odd.length).toBeLessThanOrEqual(3);
    for (const r of shed) {
      expect(r.body.error.code).toBe('BACK_PRESSURE');
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
    }
  }, 120_000);

  it('answers gRPC callers over the limit with RESOURCE_EXHAUSTED and retry-after', async () => {
    // Fill the 2 slots and the 100-deep queue with requests that wait until their clients go.
    const controllers = Array.from({ length: 102 }, () => new AbortController());
    const held = controllers.map((c) =>
      fetch(`${served.url}/narrow/work`, {
        method: 'POST',
        body: '[60000]',
        headers: { 'content-type': 'application/json', ...bearer(API) },
        signal: c.signal,
      }).catch(() => undefined),
    );
    try {
      await eventually(
        async () => (await post('/narrow/work', '[1]', API)).status === 503,
        30_000,
        'the queue to fill',
      );
      const err = (await call({ application: 'narrow', method: 'work', payload: json([1]) }, API).catch(
        (e) => e,
      )) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(Number(err.metadata.get('retry-after')[0])).toBeGreaterThanOrEqual(1);
    } finally {
      for (const c of controllers) c.abort();
      await Promise.all(held);
    }
    // The clients that left took their places with them: the deployment serves again.
    await eventually(
      async () => (await post('/narrow/work', '[1]', API)).status === 200,
      30_000,
      'the deployment to serve again',
    );
  }, 120_000);
});
