/**
 * Model multiplexing on the real runtime: three thread replicas of a deployment with a @multiplexed
 * loader (capacity 2 each), called through handles with CallOptions.multiplexedModelId and through
 * the HTTP proxy with the serve_multiplexed_model_id header; status, `serve status` and /metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import type { ServeStatus } from '@flotilla/core';
import { frontApp, muxApp, pinnedApp, processApp } from '../fixtures/apps/multiplexing.js';
import { eventually, serveForTest, type Served, serveClient } from '../helpers/ingress.js';
import { renderStatus } from '../../packages/core/src/cli/status-table.js';

interface Prediction {
  replica: string;
  model: string;
  token: string;
  disposed: string[];
}

let served: Served;

beforeAll(async () => {
  served = await serveForTest(
    [
      { name: 'mux', routePrefix: '/mux', app: muxApp() },
      { name: 'pin', routePrefix: '/pin', app: pinnedApp() },
      { name: 'front', routePrefix: '/v1', app: frontApp() },
      { name: 'proc', routePrefix: '/proc', app: processApp() },
    ],
    {},
  );
  await eventually(
    () => replicasOf(served.instance.status(), 'mux').filter((r) => r.state === 'RUNNING').length === 3,
    60_000,
    'three RUNNING replicas',
  );
}, 90_000);
afterAll(async () => {
  await served?.close();
});

function replicasOf(status: ServeStatus, app: string) {
  return status.applications.find((a) => a.name === app)?.deployments[0]?.replicas ?? [];
}

const predictVia = (id: string, input = 'x') =>
  served.instance.getHandle('mux').options({ multiplexedModelId: id }).predict(input) as Promise<Prediction>;

const postPredict = (path: string, headers: Record<string, string>) =>
  fetch(`${served.url}${path}`, {
    method: 'POST',
    body: '["hello"]',
    headers: { 'content-type': 'application/json', ...headers },
  });

describe('model multiplexing (real runtime, 3 thread replicas)', () => {
  it('repeated ids go to the replica that loaded them, through handles and the HTTP header alike', async () => {
    const first = new Map<string, Prediction>();
    for (const id of ['m0', 'm1', 'm2']) first.set(id, await predictVia(id));
    // Repeats, some concurrent, some through the proxy's header: always the same replica and the same load.
    for (let round = 0; round < 3; round++) {
      const handleCalls = await Promise.all(['m0', 'm1', 'm2', 'm0', 'm1'].map((id) => predictVia(id)));
      for (const p of handleCalls) {
        expect(p.replica).toBe(first.get(p.model)!.replica);
        expect(p.token).toBe(first.get(p.model)!.token);
      }
      for (const id of ['m0', 'm1', 'm2']) {
        const res = await postPredict('/mux/predict', { serve_multiplexed_model_id: id });
        expect(res.status).toBe(200);
        const p = (await res.json()) as Prediction;
        expect(p.replica).toBe(first.get(id)!.replica);
        expect(p.token).toBe(first.get(id)!.token);
      }
    }
    // Three new ids on three empty replicas: the router spread them (it prefers replicas with room).
    expect(new Set([...first.values()].map((p) => p.replica)).size).toBe(3);
  });

  it('takes the model id from gRPC metadata (serve.proto Call)', async () => {
    const client = serveClient(served.grpcAddress);
    try {
      const call = (id: string) =>
        new Promise<Prediction>((resolve, reject) => {
          const md = new grpc.Metadata();
          md.set('serve_multiplexed_model_id', id);
          client.Call(
            { application: 'mux', method: 'predict', payload: Buffer.from('["g"]') },
            md,
            (err: grpc.ServiceError | null, res: { payload: Buffer }) =>
              err ? reject(err) : resolve(JSON.parse(res.payload.toString())),
          );
        });
      const viaHandle = await predictVia('grpc-m');
      for (let i = 0; i < 3; i++) {
        const p = await call('grpc-m');
        expect(p.replica).toBe(viaHandle.replica);
        expect(p.token).toBe(viaHandle.token);
      }
      await expect(call('broken-grpc')).rejects.toMatchObject({ code: grpc.status.INTERNAL });
    } finally {
      client.close();
    }
  });

  it('evicts the least recently used model past capacity and shows loaded models in /-/status, serve status and /metrics', async () => {
    // 9 distinct ids over 3 replicas with room for 2 each: at least 3 evictions.
    const ids = Array.from({ length: 9 }, (_, i) => `lru-${i}`);
    const seen: Prediction[] = [];
    for (const id of ids) seen.push(await predictVia(id));
    const newest = (replica: string) => seen.filter((p) => p.replica === replica).at(-1)?.model;
    await eventually(
      async () => {
        const res = await fetch(`${served.url}/-/status`);
        const replicas = replicasOf((await res.json()) as ServeStatus, 'mux');
        return replicas.every(
          (r) => r.models?.ids.length === 2 && r.models.ids[0] === (newest(r.id) ?? r.models.ids[0]),
        );
      },
      10_000,
      'status to show the last loaded models',
    );
    const status = (await (await fetch(`${served.url}/-/status`)).json()) as ServeStatus;
    const replicas = replicasOf(status, 'mux');
    const loaded = replicas.flatMap((r) => r.models!.ids);
    expect(new Set(loaded).size).toBe(6);
    for (const r of replicas) {
      expect(r.models!.capacity).toBe(2);
    }
    const evictions = replicas.reduce((n, r) => n + r.models!.evictions, 0);
    expect(evictions).toBeGreaterThanOrEqual(3 + 3); // m0..m2 and the first three lru ids
    // The evicted models were disposed on their replica (model.dispose()).
    const last = await predictVia(loaded[0]!);
    expect(last.disposed.length).toBeGreaterThan(0);
    // An evicted id loads again (a new token) on whichever replica the router picks.
    const evictedId = ids.find((id) => !loaded.includes(id))!;
    const again = await predictVia(evictedId);
    expect(again.token).not.toBe(seen.find((p) => p.model === evictedId)!.token);

    const text = renderStatus(status);
    expect(text).toContain('multiplexed models (most recently used first)');
    expect(text).toMatch(new RegExp(`${replicas[0]!.id}\\s+2/2\\s+${replicas[0]!.models!.ids.join(',')}`));

    const metrics = await (await fetch(`${served.url}/metrics`)).text();
    expect(metrics).toMatch(
      /flotilla_replica_multiplexed_models\{app="mux",deployment="MuxModels",replica="[^"]+"\} 2/,
    );
    expect(metrics).toContain(`model="${loaded[0]}"`);
    expect(metrics).toMatch(/flotilla_multiplexed_model_evictions_total\{[^}]*\} [1-9]/);
  });

  it('never evicts a model a running request uses, even past capacity', async () => {
    const pin = served.instance.getHandle('pin');
    const holding = pin.options({ multiplexedModelId: 'p-a' }).hold(1500) as Promise<{ disposedWhileInUse: boolean }>;
    await new Promise((r) => setTimeout(r, 300));
    // Capacity 1, and p-a is in use: p-b loads next to it instead of evicting it.
    const other = (await pin.options({ multiplexedModelId: 'p-b' }).predict()) as { model: string; disposed: string[] };
    expect(other.model).toBe('p-b');
    expect(other.disposed).not.toContain('p-a');
    expect(await holding).toEqual({ model: 'p-a', disposedWhileInUse: false });
    // Once both requests are done the replica is back within capacity.
    await eventually(
      () => replicasOf(served.instance.status(), 'pin')[0]?.models?.ids.length === 1,
      10_000,
      'the pinned replica back to one model',
    );
  });

  it("a stream's model is pinned while it runs and released when the caller stops reading", async () => {
    const pin = served.instance.getHandle('pin');
    const stream = pin.options({ multiplexedModelId: 'p-stream' }).stream.ticks(1000);
    for await (const item of stream) {
      expect(item).toEqual({ model: 'p-stream', tick: 0 });
      // While the stream runs, p-late loads next to it and is the one evicted when its own call ends.
      const late = (await pin.options({ multiplexedModelId: 'p-late' }).predict()) as { disposed: string[] };
      expect(late.disposed).not.toContain('p-stream');
      break; // cancels the replica's generator, which ends the request
    }
    // Released: the next model takes p-stream's place (a leaked pin would keep it and evict p-next instead).
    await eventually(
      async () => {
        const next = (await pin.options({ multiplexedModelId: 'p-next' }).predict()) as { disposed: string[] };
        return next.disposed.includes('p-stream');
      },
      10_000,
      'p-stream to be evicted after its stream was cancelled',
    );
  });

  it('works the same in a child process replica', async () => {
    await eventually(
      () => replicasOf(served.instance.status(), 'proc')[0]?.state === 'RUNNING',
      60_000,
      'the process replica',
    );
    const call = async (id: string) => {
      const res = await postPredict('/proc/predict', { serve_multiplexed_model_id: id });
      expect(res.status).toBe(200);
      return (await res.json()) as { model: string; token: string; pid: number; disposed: string[] };
    };
    const a = await call('x-a');
    expect(a.pid).not.toBe(process.pid);
    expect((await call('x-a')).token).toBe(a.token);
    const b = await call('x-b');
    expect(b.disposed).toEqual(['x-a']);
    await eventually(
      () => replicasOf(served.instance.status(), 'proc')[0]?.models?.ids.join() === 'x-b',
      10_000,
      'the process replica to report x-b',
    );
  });

  it('a loader that throws fails the request with a typed error; the replica stays healthy', async () => {
    const broken = await postPredict('/mux/predict', { serve_multiplexed_model_id: 'broken-1' });
    expect(broken.status).toBe(500);
    const body = (await broken.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('MODEL_LOAD_FAILED');
    expect(body.error.message).toContain("checkpoint for 'broken-1' is corrupt");

    const missing = await postPredict('/mux/predict', { serve_multiplexed_model_id: 'missing-1' });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');

    const none = await postPredict('/mux/predict', {});
    expect(none.status).toBe(400);
    expect(((await none.json()) as { error: { message: string } }).error.message).toContain('no multiplexed model id');

    const tooLong = await postPredict('/mux/predict', { serve_multiplexed_model_id: 'x'.repeat(300) });
    expect(tooLong.status).toBe(400);

    await expect(predictVia('after-failure')).resolves.toMatchObject({ model: 'after-failure' });
    expect(replicasOf(served.instance.status(), 'mux').every((r) => r.state === 'RUNNING')).toBe(true);
  });

  it('keeps the loader out of the methods handles and the proxy can call', async () => {
    const res = await postPredict('/mux/model', { serve_multiplexed_model_id: 'm0' });
    expect(res.status).toBe(404);
  });

  it("routes by the model a class derives from the call (an OpenAI body's `model`), and answers an unknown one in the class's shape", async () => {
    const chat = (model?: string) =>
      fetch(`${served.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...(model ? { model } : {}), messages: [{ role: 'user', content: 'hi' }] }),
      });
    const first = new Map<string, { replica: string; token: string }>();
    for (const model of ['base-a', 'base-b']) {
      const res = await chat(model);
      expect(res.status).toBe(200);
      first.set(model, (await res.json()) as { replica: string; token: string });
    }
    // Ids a class derives count for routing once a replica has reported its loader in use.
    await eventually(
      () => {
        const held = replicasOf(served.instance.status(), 'front').flatMap((r) => r.models?.ids ?? []);
        return held.includes('base-a') && held.includes('base-b');
      },
      10_000,
      'a report of the front replicas models',
    );
    await new Promise((r) => setTimeout(r, 500)); // the controller publishes reports to the routers on its next tick (100 ms)
    for (let i = 0; i < 6; i++) {
      const model = i % 2 === 0 ? 'base-a' : 'base-b';
      const p = (await (await chat(model)).json()) as { replica: string; token: string; model: string };
      expect(p.model).toBe(model);
      expect(p.replica).toBe(first.get(model)!.replica);
      expect(p.token).toBe(first.get(model)!.token);
    }
    const unknown = await chat('missing-model');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: {
        message: "The model 'missing-model' does not exist",
        type: 'invalid_request_error',
        param: 'model',
        code: 'model_not_found',
      },
    });
    expect((await chat()).status).toBe(400);
  });
});
