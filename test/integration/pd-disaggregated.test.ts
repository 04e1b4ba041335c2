/**
 * Prefill/decode disaggregation on the real engine (stories260K): PrefillServer and two DecodeServers
 * in child processes, PdRouter in a worker thread. Output equals one engine's (greedy and seeded);
 * cancelling at any point leaves every pool on both sides whole; a decode replica that dies with the
 * payload in hand costs the request nothing (the stream is run again on the other replica), and a
 * payload the decode side refuses is served by local prefill instead.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pinnedReplicaKey, type DeploymentHandle, type ServeInstance } from '@flotilla/core';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import {
  LLM_GRPC_SERVICE,
  type DecodeServer,
  type PdDelta,
  type PdRouter,
  type PrefillServer,
} from '@flotilla/deployments';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { tryLoadNative } from '../fixtures/native-addon.js';
import { eventually } from '../helpers/eventually.js';
import { describeWithModels, models } from '../helpers/models.js';
import { serveForTest, type Served } from '../helpers/ingress.js';
import { pdCorruptApp, pdDyingApp, pdFrontApp } from '../fixtures/apps/pd-apps.js';

const native = await tryLoadNative();
const prompts = ['Once upon a time, there was a little dog', 'Lily and Tom went to the park', 'Sara had a red ball'];
const greedy = { temperature: 0, maxTokens: 40, ignoreEos: true };
const seeded = { temperature: 0.9, topP: 0.95, seed: 1234, maxTokens: 40, ignoreEos: true };

interface Ref {
  tokenIds: number[];
  text: string;
}

async function collect(stream: AsyncIterable<unknown>): Promise<Ref & { finish: string | null }> {
  const out = { tokenIds: [] as number[], text: '', finish: null as string | null };
  for await (const d of stream as AsyncIterable<PdDelta>) {
    out.tokenIds.push(...d.tokenIds);
    out.text += d.text;
    if (d.finished) out.finish = d.finishReason;
  }
  return out;
}

/** Free and total KV blocks of every replica of the prefill and decode deployments. */
async function pools(instance: ServeInstance, app: string, decodeName: string) {
  const st = instance.status().applications.find((a) => a.name === app)!;
  const out: Array<{ free: number; total: number }> = [];
  for (const [name, handle] of [
    ['PdPrefill', instance.getHandle(app, 'PdPrefill') as DeploymentHandle<PrefillServer>],
    [decodeName, instance.getHandle(app, decodeName) as DeploymentHandle<DecodeServer>],
  ] as const) {
    const dep = st.deployments.find((d) => d.name === name)!;
    for (const r of dep.replicas.filter((x) => x.state === 'RUNNING')) {
      const rep = await handle.options({ routingKey: pinnedReplicaKey(r.id) }).kvReport();
      out.push({ free: rep.freeBlocks, total: rep.totalBlocks });
    }
  }
  return out;
}
const whole = (ps: Array<{ free: number; total: number }>) => ps.length > 0 && ps.every((p) => p.free === p.total);

describeWithModels('prefill/decode disaggregation across process replicas', () => {
  describe.skipIf(!native.binding)('pd', () => {
    const ref = { greedy: [] as Ref[], seeded: [] as Ref[] };
    const ids: number[][] = [];
    let served: Served;
    let instance: ServeInstance;
    let dir: string;
    beforeAll(async () => {
      {
        await using engine = await LLMEngine.create({
          model: models.stories260K,
          tokenizerPath: models.tok512,
          numThreads: 1,
          device: 'cpu',
        });
        for (const p of prompts) {
          ids.push([...engine.prepare(p).tokenIds]);
          for (const [k, params] of [
            ['greedy', greedy],
            ['seeded', seeded],
          ] as const) {
            const out = { tokenIds: [] as number[], text: '' };
            for await (const o of engine.generate(p, params)) {
              out.tokenIds.push(...o.tokenIds);
              out.text += o.text;
            }
            ref[k].push(out);
          }
        }
      }
      dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-pd-'));
      served = await serveForTest(
        [
          { name: 'pd', routePrefix: '/', app: pdFrontApp(models.stories260K, models.tok512) },
          {
            name: 'pdkill',
            routePrefix: '/pdkill',
            app: pdDyingApp(models.stories260K, models.tok512, path.join(dir, 'killed')),
          },
          { name: 'pdbad', routePrefix: '/pdbad', app: pdCorruptApp(models.stories260K, models.tok512) },
        ],
        { grpcServices: [{ ...LLM_GRPC_SERVICE, app: 'pd' }] },
      );
      instance = served.instance;
    }, 180_000);
    afterAll(async () => {
      await served?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const route = (i: number, params: object, tag: string) => ({
      requestId: `${tag}-${i}`,
      tokenIds: ids[i]!,
      params: params as typeof greedy,
    });

    it('greedy and seeded outputs equal one engine alone, token for token and text for text', async () => {
      const h = instance.getHandle('pd', 'PdGraph') as DeploymentHandle<PdRouter>;
      for (let i = 0; i < prompts.length; i++) {
        const g = await collect(h.stream.generate(route(i, greedy, 'g')));
        expect(g.tokenIds).toEqual(ref.greedy[i]!.tokenIds);
        expect(g.text).toBe(ref.greedy[i]!.text);
        expect(g.finish).toBe('length');
        const s = await collect(h.stream.generate(route(i, seeded, 's')));
        expect(s.tokenIds).toEqual(ref.seeded[i]!.tokenIds);
        expect(s.text).toBe(ref.seeded[i]!.text);
      }
      // Concurrent requests too.
      const all = await Promise.all(prompts.map((_, i) => collect(h.stream.generate(route(i, greedy, 'c')))));
      expect(all.map((a) => a.tokenIds)).toEqual(ref.greedy.map((r) => r.tokenIds));
      const stats = await h.pdRouterStats();
      expect(stats.pd).toBe(prompts.length * 3);
      expect(stats.transfers).toBe(prompts.length * 3);
      expect(stats.fallbacks).toBe(0);
      // After the first decode reported, later ones went to the replica with the most free KV.
      expect(stats.pinned).toBeGreaterThan(0);
      expect(stats.kvBytesPerPromptToken).toBeGreaterThan(0);
      expect(whole(await eventually(() => pools(instance, 'pd', 'PdDecode'), whole))).toBe(true);
    }, 120_000);

    it('LLMFront serves the PD graph: OpenAI streamed completions and TGI generate give the greedy text of one engine', async () => {
      for (let i = 0; i < prompts.length; i++) {
        const res = await fetch(`${served.url}/v1/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: 'pd',
            prompt: prompts[i],
            max_tokens: 40,
            temperature: 0,
            ignore_eos: true,
            stream: true,
          }),
        });
        expect(res.status).toBe(200);
        let text = '';
        for (const line of (await res.text()).split('\n')) {
          if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
          text += (JSON.parse(line.slice(6)) as { choices: Array<{ text: string }> }).choices[0]?.text ?? '';
        }
        expect(text).toBe(ref.greedy[i]!.text);
      }
      const tgi = await fetch(`${served.url}/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'pd', inputs: prompts[2], parameters: { max_new_tokens: 40, do_sample: false } }),
      });
      const body = (await tgi.json()) as { generated_text: string };
      expect(ref.greedy[2]!.text.startsWith(body.generated_text)).toBe(true);
      expect(body.generated_text.length).toBeGreaterThan(0);
    }, 120_000);

    it('LLMFront serves the PD graph over llm.proto: GenerateStream gives the same tokens', async () => {
      const def = protoLoader.loadSync(LLM_GRPC_SERVICE.protoPath, { keepCase: true, longs: Number, defaults: true });
      const pkg = grpc.loadPackageDefinition(def) as unknown as {
        flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
      };
      const client = new pkg.flotilla.llm.v1.Llm(
        served.grpcAddress,
        grpc.credentials.createInsecure(),
      ) as unknown as grpc.Client & {
        GenerateStream(req: object): grpc.ClientReadableStream<{ token_ids: number[]; text: string }>;
      };
      try {
        const ids: number[] = [];
        let text = '';
        for await (const m of client.GenerateStream({
          model: 'pd',
          prompt: prompts[1],
          max_tokens: 40,
          temperature: 0,
          ignore_eos: true,
        }) as AsyncIterable<{ token_ids: number[]; text: string }>) {
          ids.push(...m.token_ids);
          text += m.text;
        }
        expect(ids).toEqual(ref.greedy[1]!.tokenIds);
        expect(text).toBe(ref.greedy[1]!.text);
      } finally {
        client.close();
      }
    }, 60_000);

    it('cancelling early (prefill), right after the first token, or mid-decode frees blocks on both sides', async () => {
      const h = instance.getHandle('pd', 'PdGraph') as DeploymentHandle<PdRouter>;
      const long = { temperature: 0, maxTokens: 200, ignoreEos: true };
      // A prompt of ~280 tokens, so that the prefill takes a while.
      const longIds = Array.from({ length: 280 }, (_, i) => ids[0]![i % ids[0]!.length]!);
      for (const after of [0, 1, 5]) {
        const ac = new AbortController();
        if (after === 0) setTimeout(() => ac.abort(), 2);
        let n = 0;
        await expect(
          (async () => {
            for await (const d of h
              .options({ signal: ac.signal })
              .stream.generate({ ...route(0, long, `x${after}`), tokenIds: longIds }) as AsyncIterable<PdDelta>) {
              n += d.tokenIds.length;
              if (n >= after) ac.abort();
            }
          })(),
        ).rejects.toThrow();
        expect(whole(await eventually(() => pools(instance, 'pd', 'PdDecode'), whole))).toBe(true);
      }
    }, 120_000);

    it('a decode replica killed with the payload in hand: the request is run again elsewhere, nothing leaks', async () => {
      const h = instance.getHandle('pdkill') as DeploymentHandle<PdRouter>;
      const g = await collect(h.stream.generate(route(1, greedy, 'k')));
      expect(existsSync(path.join(dir, 'killed'))).toBe(true); // a decode replica did die with this payload
      expect(g.tokenIds).toEqual(ref.greedy[1]!.tokenIds);
      expect(g.text).toBe(ref.greedy[1]!.text);
      // The killed replica is replaced; every live pool is whole again.
      const ps = await eventually(
        () => pools(instance, 'pdkill', 'PdDyingDecode'),
        (p) => p.length === 3 && whole(p),
        60_000,
      );
      expect(whole(ps)).toBe(true);
    }, 120_000);

    it('a payload the decode side refuses is served by local prefill, output unchanged', async () => {
      const h = instance.getHandle('pdbad') as DeploymentHandle<PdRouter>;
      for (const [i, params, r] of [
        [0, greedy, ref.greedy[0]!],
        [2, seeded, ref.seeded[2]!],
      ] as const) {
        const out = await collect(h.stream.generate(route(i, params, 'b')));
        expect(out.tokenIds).toEqual(r.tokenIds);
        expect(out.text).toBe(r.text);
      }
      const stats = await h.pdRouterStats();
      expect(stats.fallbacks).toBe(2);
      expect(whole(await eventually(() => pools(instance, 'pdbad', 'PdDecode'), whole))).toBe(true);
    }, 120_000);
  });
});
