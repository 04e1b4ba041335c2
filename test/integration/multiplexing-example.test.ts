/**
 * examples/multiplexed.ts as users run it: `serve run` (a child process), four real base models behind
 * two replicas with room for two engines each, requests naming their model by the HTTP header, and
 * `serve status` showing which replica holds which model.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { LLMEngine } from '@flotilla/engine';
import { CATALOGUE } from '../../examples/multiplexed.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { describeWithModels, repoRoot } from '../helpers/models.js';

const PROMPT = 'Sara had a red ball';
const TOKENS = 24;

interface Completion {
  model: string;
  replica: string;
  text: string;
}

describeWithModels('examples/multiplexed.ts through serve run', { timeout: 240_000 }, () => {
  let server: ServeRun;
  const expected = new Map<string, string>();

  beforeAll(async () => {
    server = await serveRun(['examples/multiplexed.ts:app'], 180_000);
    // Each model's own greedy text, from an engine in this process.
    for (const [id, options] of Object.entries(CATALOGUE)) {
      await using engine = await LLMEngine.create({ ...options, numThreads: 1, device: 'cpu' });
      let text = '';
      for await (const out of engine.generate(PROMPT, { temperature: 0, maxTokens: TOKENS })) text += out.text;
      expected.set(id, text);
    }
  }, 240_000);
  afterAll(async () => {
    await server?.stop();
  });

  const complete = (model: string | undefined) =>
    fetch(`${server.url}/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(model ? { serve_multiplexed_model_id: model } : {}) },
      body: JSON.stringify({ prompt: PROMPT, maxTokens: TOKENS }),
    });

  it('serves each model with its own engine, from the replica that loaded it', async () => {
    expect(expected.get('llama2xs-260K')).not.toBe(expected.get('stories260K')); // the models can be told apart
    const home = new Map<string, string>();
    for (let round = 0; round < 2; round++) {
      for (const id of Object.keys(CATALOGUE)) {
        const res = await complete(id);
        expect(res.status).toBe(200);
        const c = (await res.json()) as Completion;
        expect(c.model).toBe(id);
        expect(c.text).toBe(expected.get(id));
        if (round === 0) home.set(id, c.replica);
        else expect(c.replica).toBe(home.get(id));
      }
    }
    // Four models, two replicas with room for two: two on each.
    const perReplica = [...home.values()].reduce((m, r) => m.set(r, (m.get(r) ?? 0) + 1), new Map<string, number>());
    expect([...perReplica.values()]).toEqual([2, 2]);
  });

  it('answers an unknown model with 404 and a request without one with 400', async () => {
    const unknown = await complete('gpt-4');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toContain("no model 'gpt-4'");
    expect((await complete(undefined)).status).toBe(400);
  });

  it('`serve status` shows the models each replica holds', async () => {
    const status = async () => {
      const child = spawn(process.execPath, [path.join(repoRoot, 'bin/serve.js'), 'status', '--address', server.url], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d) => {
        out += d;
      });
      await new Promise((resolve) => child.on('close', resolve));
      return out;
    };
    let text = '';
    const deadline = Date.now() + 20_000;
    // The replicas' reports reach the controller about once a second.
    while (!/multiplexed models[\s\S]*2\/2[\s\S]*2\/2/.test(text) && Date.now() < deadline) text = await status();
    expect(text).toContain('multiplexed models (most recently used first)');
    const table = text.slice(text.indexOf('multiplexed models'));
    const rows = table.split('\n').filter((l) => /BaseModels\s+\S+\s+2\/2/.test(l));
    expect(rows).toHaveLength(2);
    const listed = rows.flatMap((l) => l.trim().split(/\s+/)[3]!.split(','));
    expect(listed.sort()).toEqual(Object.keys(CATALOGUE).sort());
  });
});
