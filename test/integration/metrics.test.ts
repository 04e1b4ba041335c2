/** /metrics after real traffic: every flotilla_ family the proxies and the runtime feed. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app, squarer } from '../fixtures/apps/ingress-app.js';
import { eventually, serveForTest, type Served } from '../helpers/ingress.js';

let served: Served;

beforeAll(async () => {
  served = await serveForTest(
    [
      { name: 'main', routePrefix: '/', app },
      { name: 'squares', routePrefix: '/squares', app: squarer },
    ],
    { grpc: false },
  );
});
afterAll(async () => {
  await served?.close();
});

const post = (path: string, body: string) => fetch(`${served.url}${path}`, { method: 'POST', body });
const scrape = async () => (await fetch(`${served.url}/metrics`)).text();

describe('/metrics', () => {
  it('has the flotilla_ series after traffic', async () => {
    await post('/add', '[1, 2]');
    await (await post('/ticks', '[2, 1]')).text();
    await post('/nosuch', '[]');
    await Promise.all(Array.from({ length: 16 }, (_, i) => post('/squares/square', String(i))));
    const text = await scrape();
    expect(text).toMatch(
      /flotilla_requests_total\{app="main",deployment="IngressFront",route="\/",method="add",protocol="http",status="200"\} 1/,
    );
    expect(text).toMatch(/flotilla_request_errors_total\{[^}]*code="NOT_FOUND"[^}]*\} 1/);
    expect(text).toMatch(/flotilla_request_latency_seconds_bucket\{[^}]*method="ticks"/);
    expect(text).toMatch(
      /flotilla_deployment_requests_total\{app="main",deployment="IngressTicker",method="ticks",caller="replica"\} 1/,
    );
    expect(text).toMatch(/flotilla_replicas\{app="main",deployment="IngressTicker",state="RUNNING"\} 1/);
    expect(text).toMatch(/flotilla_replica_healthy\{[^}]*placement="process"\} 1/);
    expect(text).toMatch(/flotilla_deployment_healthy\{app="squares",deployment="IngressSquarer",status="HEALTHY"\} 1/);
    expect(text).toContain('flotilla_deployment_queued_requests{app="main",deployment="IngressFront"} 0');
    expect(text).toContain('flotilla_deployment_ongoing_requests');
    expect(text).toContain('flotilla_process_cpu_seconds_total');
  });

  it('observes @batch sizes reported by the replicas', async () => {
    await Promise.all(Array.from({ length: 16 }, (_, i) => post('/squares/square', String(i))));
    // Replicas report batch sizes with their periodic stats, so they may lag the requests a little.
    await eventually(
      async () =>
        /flotilla_batch_size_count\{app="squares",deployment="IngressSquarer",method="square"\} [1-9]/.test(
          await scrape(),
        ),
      15_000,
      'batch sizes on /metrics',
    );
    const text = await scrape();
    const sum = Number(
      /flotilla_batch_size_sum\{app="squares",deployment="IngressSquarer",method="square"\} (\d+)/.exec(text)?.[1],
    );
    const count = Number(
      /flotilla_batch_size_count\{app="squares",deployment="IngressSquarer",method="square"\} (\d+)/.exec(text)?.[1],
    );
    expect(sum / count).toBeGreaterThan(1);
  });
});
