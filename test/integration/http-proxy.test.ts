/**
 * The HTTP proxy in front of the real runtime: a worker-thread ingress relaying a child-process stream,
 * over real sockets. Nothing of Flotilla is mocked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import http from 'node:http';
import { app, narrow } from '../fixtures/apps/ingress-app.js';
import { eventually, serveForTest, type Served } from '../helpers/ingress.js';

let served: Served;

beforeAll(async () => {
  served = await serveForTest(
    [
      { name: 'main', routePrefix: '/', app },
      { name: 'narrow', routePrefix: '/narrow', app: narrow },
    ],
    { http: { requestTimeoutMs: 1500, bodyLimitBytes: 16 * 1024 }, grpc: false },
  );
});
afterAll(async () => {
  await served?.close();
});

const post = (path: string, body?: string, headers: Record<string, string> = {}) =>
  fetch(`${served.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

describe('HTTP proxy (real runtime)', () => {
  it('calls methods with JSON in and out', async () => {
    const add = await post('/add', '[20, 22]');
    expect(add.status).toBe(200);
    expect(add.headers.get('content-type')).toContain('application/json');
    expect(await add.json()).toBe(42);
  });

  it('calls __call__ at the route prefix itself', async () => {
    const echo = await post('/', '{"hello":"world"}');
    expect(await echo.json()).toEqual({ echo: { hello: 'world' } });
  });

  it('echoes X-Request-ID, or generates one', async () => {
    const given = await post('/add', '[1, 2]', { 'x-request-id': 'trace-42' });
    expect(given.headers.get('x-request-id')).toBe('trace-42');
    const seen = await post('/requestId', undefined, { 'x-request-id': 'trace-43' });
    expect(await seen.json()).toBe('trace-43');
    const generated = await post('/add', '[1, 2]');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('streams as SSE and as NDJSON, across a thread and a process replica', async () => {
    const sse = await post('/ticks', '[3, 5]', { accept: 'text/event-stream' });
    expect(sse.headers.get('content-type')).toContain('text/event-stream');
    const text = await sse.text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events.slice(0, 3).map((e) => JSON.parse(e.slice('data: '.length)).tick)).toEqual([0, 1, 2]);
    expect(events[3]).toBe('event: end\ndata: {}');
    const nd = await post('/count', '[4]');
    expect(nd.headers.get('content-type')).toContain('application/x-ndjson');
    expect(
      (await nd.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).i),
    ).toEqual([0, 1, 2, 3]);
  });

  it('cancels the replica generators when the client disconnects', async () => {
    const before = await (await post('/closedCounts')).json();
    await new Promise<void>((resolve, reject) => {
      const req = http.request(
        `${served.url}/ticks`,
        { method: 'POST', headers: { accept: 'text/event-stream' } },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
      req.end('[1000, 20]');
    });
    await eventually(
      async () => {
        const now = await (await post('/closedCounts')).json();
        return now.front > before.front && now.ticker > before.ticker;
      },
      10_000,
      'both generators (thread and process) to be closed',
    );
  });

  it('answers back-pressure with 503 and Retry-After', async () => {
    const results = await Promise.all(Array.from({ length: 4 }, () => post('/narrow/hold', '[1000]')));
    const refused = results.filter((r) => r.status === 503);
    expect(refused.length).toBeGreaterThan(0);
    expect(Number(refused[0]!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await refused[0]!.json()).error.code).toBe('BACK_PRESSURE');
    expect(results.some((r) => r.status === 200)).toBe(true);
  });

  it('rejects bad input with clear 4xx errors', async () => {
    const malformed = await post('/add', '[1, 2');
    expect(malformed.status).toBe(400);
    expect((await malformed.json()).error).toMatchObject({ code: 'BAD_REQUEST' });
    const unknownRoute = await post('/narrow-but-not-really/hold');
    expect(unknownRoute.status).toBe(404);
    const unknownMethod = await post('/nosuch', '[]');
    expect(unknownMethod.status).toBe(404);
    expect((await unknownMethod.json()).error.message).toContain('add');
    const oversized = await post('/add', JSON.stringify(['x'.repeat(20 * 1024)]));
    expect(oversized.status).toBe(413);
    expect((await oversized.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('times out slow requests with 408', async () => {
    const slow = await post('/sleep', '[5000]');
    expect(slow.status).toBe(408);
    expect((await slow.json()).error.code).toBe('REQUEST_TIMEOUT');
  });

  it('reports user errors as 500 with the message', async () => {
    const res = await post('/fail', '"kaboom"');
    expect(res.status).toBe(500);
    expect((await res.json()).error.message).toContain('kaboom');
  });

  it('serves /-/healthz, /-/routes and /-/status', async () => {
    expect((await fetch(`${served.url}/-/healthz`)).status).toBe(200);
    const routes = await (await fetch(`${served.url}/-/routes`)).json();
    expect(routes.routes.map((r: { routePrefix: string }) => r.routePrefix).sort()).toEqual(['/', '/narrow']);
    const status = await (await fetch(`${served.url}/-/status`)).json();
    const main = status.applications.find((a: { name: string }) => a.name === 'main');
    expect(main.deployments.map((d: { name: string }) => d.name).sort()).toEqual(['IngressFront', 'IngressTicker']);
    expect(status.http).toBe(served.url);
  });
});
