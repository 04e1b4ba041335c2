import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpProxy } from '../../../packages/core/src/ingress/http-proxy.js';
import { InMemoryTarget } from './in-memory-target.js';

let target: InMemoryTarget;
let proxy: HttpProxy;
const gate: { release?: () => void } = {};

beforeAll(async () => {
  target = new InMemoryTarget([
    {
      name: 'echo',
      routePrefix: '/echo',
      impl: {
        __call__: (x: unknown) => ({ got: x }),
        add: (a: number, b: number) => a + b,
        slow: (ms: number) => sleep(ms).then(() => 'late'),
        wait: () =>
          new Promise<string>((resolve) => {
            gate.release = () => resolve('released');
          }),
        async *count(n: number) {
          for (let i = 0; i < n; i++) yield { i };
        },
        async *forever() {
          for (let i = 0; ; i++) {
            yield i;
            await sleep(5);
          }
        },
      },
    },
    {
      name: 'raw',
      routePrefix: '/v1',
      rawHttp: true,
      impl: {
        handleHttp: (req: any) => ({
          status: 201,
          headers: { 'X-Path': req.path },
          body: { method: req.method, body: req.body, q: req.query },
        }),
      },
    },
  ]);
  proxy = await HttpProxy.start(target, { port: 0, requestTimeoutMs: 300, bodyLimitBytes: 1024 });
});
afterAll(async () => {
  await proxy.close();
});

const post = (path: string, body?: string, headers: Record<string, string> = {}) =>
  fetch(`${proxy.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

describe('HttpProxy over an in-memory target', () => {
  it('calls methods with spread arrays and single values', async () => {
    expect(await (await post('/echo/add', '[2,3]')).json()).toBe(5);
    expect(await (await post('/echo', '{"a":1}')).json()).toEqual({ got: { a: 1 } });
    expect(await (await post('/echo')).json()).toEqual({});
  });

  it('echoes or generates X-Request-ID and passes it down', async () => {
    const r = await post('/echo/add', '[1,1]', { 'x-request-id': 'abc-123' });
    expect(r.headers.get('x-request-id')).toBe('abc-123');
    expect(target.lastOptions?.requestId).toBe('abc-123');
    expect(target.lastOptions?.signal).toBeInstanceOf(AbortSignal);
    const g = await post('/echo/add', '[1,1]');
    expect(g.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers 400, 404, 413 and 408 with JSON errors', async () => {
    const bad = await post('/echo/add', '{oops');
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.code).toBe('BAD_REQUEST');
    const missing = await post('/nope');
    expect(missing.status).toBe(404);
    const noMethod = await post('/echo/zzz');
    expect(noMethod.status).toBe(404);
    expect((await noMethod.json()).error.message).toContain('add');
    const big = await post('/echo/add', JSON.stringify(['x'.repeat(2000)]));
    expect(big.status).toBe(413);
    expect((await big.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
    const slow = await post('/echo/slow', '[2000]');
    expect(slow.status).toBe(408);
    expect((await slow.json()).error.code).toBe('REQUEST_TIMEOUT');
  });

  it('streams NDJSON and SSE', async () => {
    const nd = await post('/echo/count', '[3]');
    expect(nd.headers.get('content-type')).toContain('application/x-ndjson');
    expect(
      (await nd.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([{ i: 0 }, { i: 1 }, { i: 2 }]);
    const sse = await post('/echo/count', '[2]', { accept: 'text/event-stream' });
    expect(sse.headers.get('content-type')).toContain('text/event-stream');
    expect(await sse.text()).toBe('data: {"i":0}\n\ndata: {"i":1}\n\nevent: end\ndata: {}\n\n');
  });

  it('closes the generator when the client disconnects', async () => {
    const res = await post('/echo/forever', undefined, { accept: 'text/event-stream' });
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    for (let i = 0; i < 100 && !target.closedStreams.includes('forever'); i++) await sleep(10);
    expect(target.closedStreams).toContain('forever');
  });

  it('serves raw HTTP deployments', async () => {
    const r = await fetch(`${proxy.url}/v1/chat/completions?x=1`, {
      method: 'POST',
      body: '{"m":1}',
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(201);
    expect(r.headers.get('x-path')).toBe('/chat/completions');
    expect(await r.json()).toEqual({ method: 'POST', body: { m: 1 }, q: { x: '1' } });
  });

  it('answers back-pressure with 503 and Retry-After', async () => {
    target.maxOngoing = 0;
    try {
      const r = await post('/echo/add', '[1,2]');
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('2');
    } finally {
      target.maxOngoing = Infinity;
    }
  });

  it('serves admin routes', async () => {
    expect(await (await fetch(`${proxy.url}/-/healthz`)).text()).toBe('ok');
    const routes = await (await fetch(`${proxy.url}/-/routes`)).json();
    expect(routes.routes.map((r: any) => r.app)).toEqual(['echo', 'raw']);
    const status = await (await fetch(`${proxy.url}/-/status`)).json();
    expect(status.http).toBe(proxy.url);
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    expect(metrics).toContain('flotilla_requests_total{app="echo"');
    expect(metrics).toContain('flotilla_replicas{app="echo",deployment="echoIngress",state="RUNNING"} 1');
  });

  it('drains: in-flight requests finish, new ones get 503', async () => {
    const inflight = post('/echo/wait');
    for (let i = 0; i < 50 && !gate.release; i++) await sleep(5);
    const drained = proxy.drain(2000);
    const refused = await post('/echo/add', '[1,2]');
    expect(refused.status).toBe(503);
    gate.release!();
    expect(await (await inflight).json()).toBe('released');
    expect(await drained).toBe(true);
  });
});

describe('HttpProxy: a JSON body that does not parse, for raw-HTTP deployments', () => {
  let rawProxy: HttpProxy;
  const echo = (req: any) => ({ status: 200, body: { body: req.body, bodyError: req.bodyError ?? null } });
  beforeAll(async () => {
    rawProxy = await HttpProxy.start(
      new InMemoryTarget([
        { name: 'plain', routePrefix: '/plain', rawHttp: true, impl: { handleHttp: echo } },
        { name: 'own', routePrefix: '/own', rawHttp: true, handlesMalformedJson: true, impl: { handleHttp: echo } },
      ]),
      { port: 0, bodyLimitBytes: 1024 },
    );
  });
  afterAll(async () => {
    await rawProxy.close();
  });
  const send = (path: string, body: string) =>
    fetch(`${rawProxy.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });

  it('answers 400 itself by default, as before', async () => {
    const r = await send('/plain/x', '{oops');
    expect(r.status).toBe(400);
    expect((await r.json()).error.code).toBe('BAD_REQUEST');
  });

  it('hands it over as text with bodyError to a class with handlesMalformedJson; valid JSON is parsed as ever', async () => {
    const r = await send('/own/x', '{oops');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ body: '{oops', bodyError: expect.stringMatching(/JSON/) });
    expect(await (await send('/own/x', '{"a":1}')).json()).toEqual({ body: { a: 1 }, bodyError: null });
  });

  it('still answers a body over its limit with 413 before any deployment', async () => {
    const r = await send('/own/x', `{"a":"${'x'.repeat(2000)}"`);
    expect(r.status).toBe(413);
    expect((await r.json()).error.code).toBe('PAYLOAD_TOO_LARGE');
  });
});
