/**
 * Guided decoding in the engine on the bundled story model: json_schema samples at temperature 1 all
 * validate (ajv); one request's n samples each follow their own grammar state; guided and unguided
 * sequences batched together leave the unguided ones' greedy output unchanged; choice and regex;
 * bad specs are refused at prepare() naming 'guided' with XGrammar's problem; aborts free everything.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLMEngine, type RequestOutput, type SamplingParams } from '../../packages/engine/src/index.js';
import { repoRoot } from '../helpers/models.js';

const MODEL = path.join(repoRoot, 'models/flotilla-stories/target');
const schema = JSON.parse(readFileSync(path.join(repoRoot, 'bench/guided/schemas/person.json'), 'utf8'));

async function collect(engine: LLMEngine, prompt: string, params: SamplingParams): Promise<RequestOutput[]> {
  const last: RequestOutput[] = [];
  for await (const o of engine.generate(prompt, params)) last[o.index] = o;
  return last;
}

describe('guided decoding: engine', () => {
  let engine: LLMEngine;
  beforeAll(async () => {
    engine = await LLMEngine.create({ model: MODEL, speculative: { method: 'ngram', k: 3 } });
  }, 60_000);
  afterAll(() => engine?.dispose());

  it('six json_schema samples at temperature 1 all validate', async () => {
    const validate = new Ajv().compile(schema);
    const outs = await collect(engine, 'Once upon a time', {
      temperature: 1,
      n: 6,
      seed: 11,
      maxTokens: 120,
      guided: { kind: 'json_schema', schema },
    });
    expect(outs).toHaveLength(6);
    for (const o of outs) {
      expect(o.finishReason, o.cumulativeText).toBe('stop');
      expect(validate(JSON.parse(o.cumulativeText)), o.cumulativeText).toBe(true);
    }
    expect(new Set(outs.map((o) => o.cumulativeText)).size).toBeGreaterThan(1); // own states, own draws
  });

  it('guided and unguided sequences in the same steps: the unguided output is unchanged', async () => {
    const plain: SamplingParams = { temperature: 0, maxTokens: 40 };
    const prompts = ['The little dog', 'One day, Lily'];
    const alone = await Promise.all(prompts.map((p) => collect(engine, p, plain)));
    const mixed = await Promise.all([
      ...prompts.map((p) => collect(engine, p, plain)),
      collect(engine, 'Tom said', { temperature: 1, seed: 2, n: 2, maxTokens: 60, guided: { kind: 'json_object' } }),
      collect(engine, 'Tom said', {
        temperature: 0,
        maxTokens: 10,
        guided: { kind: 'choice', choices: ['yes', 'no'] },
      }),
    ]);
    expect(mixed[0]![0]!.cumulativeText).toBe(alone[0]![0]!.cumulativeText);
    expect(mixed[1]![0]!.cumulativeText).toBe(alone[1]![0]!.cumulativeText);
    for (const o of mixed[2]!) {
      if (o.finishReason === 'stop') expect(typeof JSON.parse(o.cumulativeText)).toBe('object');
      else expect(o.cumulativeText.startsWith('{')).toBe(true);
    }
    expect(['yes', 'no']).toContain(mixed[3]![0]!.cumulativeText);
  });

  it('regex: every output matches', async () => {
    const outs = await collect(engine, 'The cat', {
      temperature: 1,
      seed: 4,
      n: 3,
      maxTokens: 30,
      guided: { kind: 'regex', pattern: '(cat|dog)-[0-9]{2,4}' },
    });
    for (const o of outs) {
      expect(o.finishReason).toBe('stop');
      expect(o.cumulativeText).toMatch(/^(cat|dog)-[0-9]{2,4}$/);
    }
  });

  it('refuses bad schemas, regexes and grammars at prepare(), naming guided and the problem', () => {
    const bad: Array<[SamplingParams['guided'], RegExp]> = [
      [{ kind: 'json_schema', schema: { type: 'nope' } }, /Unsupported type "nope"/],
      [{ kind: 'regex', pattern: '[ab' }, /Regex parsing error/],
      [{ kind: 'grammar', grammar: 'root ::= foo' }, /Rule "foo" is not defined/],
    ];
    for (const [guided, problem] of bad) {
      expect(() => engine.prepare('x', { guided })).toThrow(
        expect.objectContaining({ param: 'guided', problem: expect.stringMatching(problem) }),
      );
    }
    // and keeps serving
    expect(engine.prepare('x', { guided: { kind: 'json_object' } }).params.guided).toEqual({ kind: 'json_object' });
  });

  it('a guided request cut by maxTokens ends with length; aborted ones free their state', async () => {
    const outs = await collect(engine, 'Once', {
      temperature: 1,
      seed: 9,
      maxTokens: 3,
      guided: { kind: 'json_schema', schema },
    });
    expect(outs[0]!.finishReason).toBe('length');
    const ac = new AbortController();
    const stream = engine.generate(
      'Once',
      { temperature: 1, n: 2, maxTokens: 200, guided: { kind: 'json_object' } },
      { signal: ac.signal },
    );
    let n = 0;
    for await (const _ of stream) if (++n === 3) ac.abort();
    expect(engine.debugCounts()).toMatchObject({ requests: 0, samples: 0 });
  });
});
