/**
 * Guided decoding's pure parts: mask packing (token-mask.ts: XGrammar's bit layout, per-sequence word
 * offsets, -1 for unmasked rows, growth), the byte-level vocabulary XGrammar reads, and GuidedSpec
 * shape checks with the errors naming the field.
 */
import { describe, expect, it } from 'vitest';
import { checkGuidedSpec, ebnfString, grammarSource } from '../../packages/engine/src/guided/guided-spec.js';
import { allows, countAllowed, MaskPacker, maskOf, maskWords } from '../../packages/engine/src/guided/token-mask.js';
import { byteAlphabet } from '../../packages/engine/src/guided/xgrammar-vocab.js';
import { resolveSamplingParams } from '../../packages/engine/src/sampling-params.js';

describe('token masks', () => {
  it('one bit per token, little-endian within 32-bit words (XGrammar getNextTokenBitmask)', () => {
    const V = 70;
    expect(maskWords(V)).toBe(3);
    const m = maskOf([0, 31, 32, 69], V);
    expect(Array.from(m)).toEqual([0x80000001, 1, 1 << 5]);
    for (let t = 0; t < V; t++) expect(allows(m, t)).toBe([0, 31, 32, 69].includes(t));
    expect(countAllowed(m, V)).toBe(4);
    // bits past the vocabulary do not count
    expect(countAllowed(Uint32Array.of(0, 0, 0xffffffff), V)).toBe(6);
    expect(() => maskOf([70], V)).toThrow(RangeError);
  });

  it('packs the masks of a step one after another with -1 for unmasked sequences, growing as needed', () => {
    const V = 40;
    const W = maskWords(V);
    const p = new MaskPacker(V, 8);
    p.reset(6);
    expect(p.any).toBe(false);
    const masks = [1, 3, 4, 5].map((s) => [s, maskOf([s, 39 - s], V)] as const);
    for (const [s, m] of masks) p.add(s, m);
    expect(p.any).toBe(true);
    expect(Array.from(p.offsets.subarray(0, 6))).toEqual([-1, 0, -1, W, 2 * W, 3 * W]);
    for (const [s, m] of masks) expect(p.tokenMask.subarray(p.offsets[s]!, p.offsets[s]! + W)).toEqual(m);
    p.reset(6); // a new step starts empty
    expect(p.any).toBe(false);
    expect(Array.from(p.offsets.subarray(0, 6))).toEqual([-1, -1, -1, -1, -1, -1]);
    expect(() => p.add(0, new Uint32Array(W - 1))).toThrow(RangeError);
  });

  it('byte-level alphabet: 256 distinct characters, printable ASCII as itself, space as Ġ', () => {
    const a = byteAlphabet();
    expect(new Set(a).size).toBe(256);
    expect(a[0x41]).toBe('A');
    expect(a[0x20]).toBe('Ġ');
    expect(a[0x0a]).toBe('Ċ');
  });
});

describe('GuidedSpec', () => {
  it('accepts the five kinds and normalizes a boolean schema', () => {
    expect(checkGuidedSpec({ kind: 'json_schema', schema: { type: 'object' } })).toEqual({
      kind: 'json_schema',
      schema: { type: 'object' },
    });
    expect(checkGuidedSpec({ kind: 'json_schema', schema: '{"type":"string"}' }).kind).toBe('json_schema');
    expect(checkGuidedSpec({ kind: 'json_schema', schema: true })).toEqual({ kind: 'json_schema', schema: 'true' });
    expect(checkGuidedSpec({ kind: 'json_object' })).toEqual({ kind: 'json_object' });
    expect(checkGuidedSpec({ kind: 'regex', pattern: 'a+' })).toEqual({ kind: 'regex', pattern: 'a+' });
    expect(checkGuidedSpec({ kind: 'choice', choices: ['x', 'y'] })).toEqual({ kind: 'choice', choices: ['x', 'y'] });
    expect(checkGuidedSpec({ kind: 'grammar', grammar: 'root ::= "a"' }).kind).toBe('grammar');
  });

  it('refuses bad shapes naming the field', () => {
    const bad: Array<[unknown, string]> = [
      ['json', 'guided'],
      [{ kind: 'xml' }, 'guided.kind'],
      [{ kind: 'json_schema', schema: '{nope' }, 'guided.schema'],
      [{ kind: 'json_schema', schema: [1] }, 'guided.schema'],
      [{ kind: 'regex', pattern: '' }, 'guided.pattern'],
      [{ kind: 'choice', choices: [] }, 'guided.choices'],
      [{ kind: 'choice', choices: ['a', ''] }, 'guided.choices'],
      [{ kind: 'json_object', extra: 1 }, 'guided.extra'],
    ];
    for (const [v, param] of bad)
      expect(() => checkGuidedSpec(v), JSON.stringify(v)).toThrow(expect.objectContaining({ param }));
  });

  it('is a sampling parameter, not with minTokens or promptLogprobs', () => {
    const ctx = { maxModelLen: 100, vocabSize: 50, promptLen: 3 };
    expect(resolveSamplingParams({ guided: { kind: 'json_object' } }, ctx).guided).toEqual({ kind: 'json_object' });
    expect(resolveSamplingParams({}, ctx).guided).toBeUndefined();
    expect(() => resolveSamplingParams({ guided: { kind: 'json_object' }, minTokens: 2 }, ctx)).toThrow(
      expect.objectContaining({ param: 'minTokens' }),
    );
    expect(() => resolveSamplingParams({ guided: { kind: 'json_object' }, promptLogprobs: 0 }, ctx)).toThrow(
      expect.objectContaining({ param: 'promptLogprobs' }),
    );
  });

  it('choices become an EBNF alternation of escaped literals; objects any JSON object, compact', () => {
    expect(ebnfString('a"b\\c\n')).toBe('"a\\"b\\\\c\\u000a"');
    const src = grammarSource({ kind: 'choice', choices: ['yes', 'n"o'] });
    expect(src.kind).toBe('structural_tag');
    expect(JSON.parse((src as { json: string }).json).format).toEqual({
      type: 'grammar',
      grammar: 'root ::= "yes" | "n\\"o"',
    });
    expect(grammarSource({ kind: 'json_object' })).toMatchObject({ kind: 'json_schema', strict: false });
    expect(grammarSource({ kind: 'json_schema', schema: { type: 'integer' } })).toMatchObject({
      schema: '{"type":"integer"}',
      strict: true,
    });
  });
});
