/**
 * SpeculativePipeline across actors: DraftModel (llama2xs-260K) and TargetModel (stories260K) each in
 * a child process, the pipeline in a worker thread. Greedy output streamed round by round equals
 * LLMEngine on the target alone, token for token and text for text, with and without proposing ahead;
 * sessions are released after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type ServeInstance } from '@flotilla/core';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { tryLoadNative } from '../fixtures/native-addon.js';
import { run } from '../helpers/engine-suite.js';
import { eventually } from '../helpers/eventually.js';
import { describeWithModels, models } from '../helpers/models.js';
import { specApp } from '../fixtures/apps/spec-apps.js';

const native = await tryLoadNative();
const prompts = ['Once upon a time, there was a little dog', 'Lily and Tom went to the park', 'Sara had a red ball'];

describeWithModels('SpeculativePipeline across process replicas', () => {
  describe.skipIf(!native.binding)('pipeline', () => {
    let instance: ServeInstance;
    let reference: Array<{ tokenIds: number[]; text: string }>;
    beforeAll(async () => {
      {
        await using engine = await LLMEngine.create({ model: models.stories260K, numThreads: 1, device: 'cpu' });
        reference = [];
        for (const p of prompts) {
          const c = await run(engine, p, { temperature: 0, maxTokens: 40 });
          reference.push({ tokenIds: c.tokenIds, text: c.text });
        }
      }
      instance = await startServe({
        applications: [
          {
            name: 'spec',
            routePrefix: '/spec',
            app: specApp({ target: models.stories260K, draft: models.llama2xs260K, tokenizer: models.tok512 }),
          },
          {
            name: 'ahead',
            routePrefix: '/ahead',
            app: specApp({
              target: models.stories260K,
              draft: models.llama2xs260K,
              tokenizer: models.tok512,
              lookahead: true,
            }),
          },
        ],
      });
    }, 120_000);
    afterAll(async () => {
      await instance?.shutdown();
    });

    it('streams greedy output identical to the target alone, round by round', async () => {
      const handle = instance.getHandle('spec');
      for (let i = 0; i < prompts.length; i++) {
        const chunks: Array<{
          tokenIds: number[];
          text: string;
          accepted: number;
          finished: boolean;
          timing: { roundMs: number; draftMs: number; verifyMs: number };
        }> = [];
        for await (const c of handle.stream.generate({
          prompt: prompts[i]!,
          params: { temperature: 0, maxTokens: 40 },
        }))
          chunks.push(c);
        expect(chunks.flatMap((c) => c.tokenIds)).toEqual(reference[i]!.tokenIds);
        expect(chunks.map((c) => c.text).join('')).toBe(reference[i]!.text);
        expect(chunks.at(-1)!.finished).toBe(true);
        // Speculation pays: fewer rounds than tokens.
        expect(chunks.length).toBeLessThan(reference[i]!.tokenIds.length);
        // Each round's time breakdown: the replicas' own times lie within the pipeline's wall time of the round.
        for (const { timing } of chunks) {
          expect(timing.verifyMs).toBeGreaterThan(0);
          expect(timing.draftMs).toBeGreaterThanOrEqual(0);
          expect(timing.roundMs).toBeGreaterThanOrEqual(timing.draftMs + timing.verifyMs - 0.01);
        }
        expect(chunks.some((c) => c.timing.draftMs > 0)).toBe(true);
      }
    }, 60_000);

    it('serves concurrent requests exactly, and releases their sessions', async () => {
      const handle = instance.getHandle('spec');
      const outs = await Promise.all(
        prompts.map((p) => handle.complete({ prompt: p, params: { temperature: 0, maxTokens: 40 } })),
      );
      expect(outs.map((o) => o.tokenIds)).toEqual(reference.map((r) => r.tokenIds));
      const rate = outs.reduce((a, o) => a + o.accepted, 0) / outs.reduce((a, o) => a + o.tokenIds.length, 0);
      console.log(
        `[spec-pipeline] accepted share of output tokens ${rate.toFixed(3)}, rounds ${outs.map((o) => o.rounds).join(',')}`,
      );
      const draft = instance.getHandle('spec', 'SpecDraft');
      const target = instance.getHandle('spec', 'SpecTarget');
      const idle = await eventually(
        async () => [(await target.stats()).sessions, (await draft.stats()).sessions],
        (v) => v[0] === 0 && v[1] === 0,
      );
      expect(idle).toEqual([0, 0]);
    }, 60_000);

    it('proposing ahead: greedy output identical, some rounds start from a call made ahead, sessions released', async () => {
      const handle = instance.getHandle('ahead');
      let ahead = 0;
      for (let i = 0; i < prompts.length; i++) {
        const out = await handle.complete({ prompt: prompts[i]!, params: { temperature: 0, maxTokens: 40 } });
        expect(out.tokenIds).toEqual(reference[i]!.tokenIds);
        expect(out.text).toBe(reference[i]!.text);
        ahead += out.aheadRounds;
      }
      expect(ahead).toBeGreaterThan(0);
      // The pipeline's metrics count the rounds made ahead and split the rounds' time by part.
      const metrics = (await instance.replicaMetrics()).find(
        (m) => m.app === 'ahead' && m.deployment === 'SpecPipeline',
      );
      const values = (name: string) =>
        (
          metrics!.metrics as Array<{ name: string; values: Array<{ value: number; labels: Record<string, string> }> }>
        ).find((m) => m.name === name)!.values;
      expect(values('flotilla_spec_pipeline_ahead_rounds_total')[0]!.value).toBe(ahead);
      expect(values('flotilla_spec_pipeline_rounds_total')[0]!.value).toBeGreaterThan(ahead);
      const parts = Object.fromEntries(
        values('flotilla_spec_pipeline_round_seconds_total').map((v) => [v.labels.part, v.value]),
      );
      expect(Object.keys(parts).sort()).toEqual(['crossings', 'draft', 'verify']);
      expect(parts.verify).toBeGreaterThan(0);
      // Sampled requests do not propose ahead.
      const sampled = await handle.complete({
        prompt: prompts[0]!,
        params: { temperature: 1, seed: 3, maxTokens: 20 },
      });
      expect(sampled.aheadRounds).toBe(0);
      const draft = instance.getHandle('ahead', 'SpecDraft');
      const target = instance.getHandle('ahead', 'SpecTarget');
      const idle = await eventually(
        async () => [(await target.stats()).sessions, (await draft.stats()).sessions],
        (v) => v[0] === 0 && v[1] === 0,
      );
      expect(idle).toEqual([0, 0]);
    }, 60_000);

    it('a client that stops reading after the first round leaves no session behind, with and without lookahead', async () => {
      for (const app of ['spec', 'ahead']) {
        for await (const _ of instance.getHandle(app).stream.generate({
          prompt: prompts[1]!,
          params: { temperature: 0, maxTokens: 40 },
        }))
          break;
        const draft = instance.getHandle(app, 'SpecDraft');
        const target = instance.getHandle(app, 'SpecTarget');
        const idle = await eventually(
          async () => [(await target.stats()).sessions, (await draft.stats()).sessions],
          (v) => v[0] === 0 && v[1] === 0,
        );
        expect(idle).toEqual([0, 0]);
      }
    }, 60_000);

    it('sampled requests with a seed are reproducible through the pipeline', async () => {
      const handle = instance.getHandle('spec');
      const params = { temperature: 1, seed: 42, maxTokens: 30 };
      const a = await handle.complete({ prompt: prompts[0]!, params });
      const b = await handle.complete({ prompt: prompts[0]!, params });
      expect(a.tokenIds).toEqual(b.tokenIds);
      expect(a.tokenIds.length).toBeGreaterThan(0);
    }, 60_000);
  });
});
