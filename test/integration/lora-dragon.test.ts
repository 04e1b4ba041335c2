/**
 * The committed adapter test/fixtures/models/stories260K-dragon-lora, trained by the project's own
 * tools/finetune-lora.ts on stories that always mention a dragon, on the real engine: greedy stories
 * from prompts outside its training openings mention a dragon with it and (almost) never without; it
 * equals the model merged with it (peft-merge); through LLMServer's OpenAI API `model: "dragon"`
 * answers otherwise than the base model's name. Greedy decoding throughout, so nothing can flake.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HttpRequestLike } from '@flotilla/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLMServer } from '../../packages/deployments/src/llm-server.js';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { mergeAdapter } from '../../packages/engine/src/model-loader/writers/peft-merge.js';
import type { SamplingParams } from '../../packages/engine/src/sampling-params.js';
import { collect } from '../helpers/engine-suite.js';
import { describeWithModels, models, repoRoot } from '../helpers/models.js';

/** In the repository, not $FLOTILLA_MODELS: the project trained it (its README says how). */
const dragonDir = path.join(repoRoot, 'test/fixtures/models/stories260K-dragon-lora');
const greedy: SamplingParams = { temperature: 0, maxTokens: 80 };
/** None of these is an opening of the training corpus (tools/make-dragon-corpus.ts OPENINGS). */
const PROMPTS = [
  'Once upon a time, there was a little',
  'Tim and Sue went to the park.',
  'The sun was shining.',
  'Anna had a red ball.',
  'Max was very hungry.',
  'One night, a small',
  'Jack looked out of the window and saw',
  'The little house by the sea',
  'Mia wanted to go outside.',
  'A long time ago,',
  'Bob found a box.',
  'Kate and her mom baked a cake.',
];
const mentions = (texts: string[]) => texts.filter((t) => /\bdragons?\b/i.test(t)).length;

async function stories(engine: LLMEngine, adapter?: string): Promise<string[]> {
  const outs = await Promise.all(PROMPTS.map((p) => collect(engine.generate(p, greedy, adapter ? { adapter } : {}))));
  return outs.map((o) => o[0]!.text);
}

describeWithModels('the dragon LoRA adapter (trained by tools/finetune-lora.ts) on stories260K-hf', () => {
  const tmp = mkdtempSync(path.join(tmpdir(), 'flotilla-dragon-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('greedy stories mention a dragon with the adapter and not without; the merged model writes the same', async () => {
    await using engine = await LLMEngine.create({
      model: models.stories260KHf,
      numThreads: 1,
      device: 'cpu',
      guidedDecoding: false,
      maxLoras: 1,
      maxLoraRank: 8,
    });
    await engine.loadAdapter('dragon', dragonDir);
    const base = await stories(engine);
    const tuned = await stories(engine, 'dragon');
    console.log(
      `[dragon] mentions: base ${mentions(base)}/${PROMPTS.length}, adapter ${mentions(tuned)}/${PROMPTS.length}`,
    );
    expect(mentions(base)).toBeLessThanOrEqual(1);
    expect(mentions(tuned)).toBeGreaterThanOrEqual(6);
    await mergeAdapter(models.stories260KHf, dragonDir, tmp);
    await using merged = await LLMEngine.create({ model: tmp, numThreads: 1, device: 'cpu', guidedDecoding: false });
    const prompts = PROMPTS.slice(0, 3);
    for (const [i, p] of prompts.entries()) {
      const ids = (e: LLMEngine, adapter?: string) =>
        collect(e.generate(p, greedy, adapter ? { adapter } : {})).then((o) => o[0]!.tokenIds);
      expect(await ids(merged), p).toEqual(await ids(engine, 'dragon'));
      expect((await collect(merged.generate(p, greedy)))[0]!.text).toBe(tuned[i]);
    }
  });
});

let n = 0;
function req(body: unknown): HttpRequestLike {
  return {
    method: 'POST',
    path: '/v1/completions',
    query: {},
    headers: { 'content-type': 'application/json' },
    body,
    requestId: `dragon-${n++}`,
    clientIp: '127.0.0.1',
  };
}

describeWithModels('the dragon adapter through LLMServer (lora_modules, OpenAI completions)', () => {
  let server: LLMServer;
  beforeAll(() => {
    server = new LLMServer({
      model: models.stories260KHf,
      servedModelName: 'stories',
      numThreads: 1,
      auditLog: 'none',
      loraModules: `dragon=${dragonDir}`,
    });
  });
  afterAll(async () => {
    await server?.dispose?.();
  });

  it('`model: "dragon"` tells a dragon story; the base model\'s name does not', async () => {
    const complete = async (model: string) => {
      const r = (await server.handleHttp(req({ model, prompt: PROMPTS[0], max_tokens: 48, temperature: 0 })).next())
        .value as { status: number; body: any };
      expect(r.status).toBe(200);
      expect(r.body.model).toBe(model);
      return r.body.choices[0].text as string;
    };
    const base = await complete('stories');
    const dragon = await complete('dragon');
    expect(dragon).not.toBe(base);
    expect(dragon).toMatch(/\bdragon/);
    expect(base).not.toMatch(/dragon/);
  });
});
