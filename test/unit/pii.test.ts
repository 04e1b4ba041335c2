import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PiiBlockedError } from '../../packages/deployments/src/pii/pii-errors.js';
import { PiiFilter, redactMatches } from '../../packages/deployments/src/pii/pii-filter.js';
import { findPii, luhnValid, PII_KINDS, type PiiKind } from '../../packages/deployments/src/pii/recognizers.js';
import { StreamRedactor } from '../../packages/deployments/src/pii/stream-redactor.js';
import { repoRoot } from '../helpers/models.js';

interface Row {
  text: string;
  pii: { kind: PiiKind; value: string }[];
}
const corpus: Row[] = readFileSync(path.join(repoRoot, 'test/fixtures/pii/corpus.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));

describe('PII recognizers', () => {
  it('reach precision and recall >= 0.95 per kind on the labelled corpus', () => {
    const stats = Object.fromEntries(PII_KINDS.map((k) => [k, { tp: 0, fp: 0, fn: 0 }]));
    for (const row of corpus) {
      const found = findPii(row.text).map((m) => ({ kind: m.kind, value: row.text.slice(m.start, m.end) }));
      for (const f of found) {
        if (row.pii.some((p) => p.kind === f.kind && p.value === f.value)) stats[f.kind]!.tp++;
        else stats[f.kind]!.fp++;
      }
      for (const p of row.pii) if (!found.some((f) => f.kind === p.kind && f.value === p.value)) stats[p.kind]!.fn++;
    }
    for (const [kind, s] of Object.entries(stats)) {
      expect(s.tp, kind).toBeGreaterThan(20);
      expect(s.tp / (s.tp + s.fp), `precision of ${kind}`).toBeGreaterThanOrEqual(0.95);
      expect(s.tp / (s.tp + s.fn), `recall of ${kind}`).toBeGreaterThanOrEqual(0.95);
    }
  });

  it('checks Luhn and rejects digit runs that fail it', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(findPii('ref 4111 1111 1111 1112 ok')).toEqual([]);
    expect(findPii('card 4111-1111-1111-1111 ok').map((m) => m.kind)).toEqual(['card']);
  });

  it('keeps the more specific kind when spans overlap, and only the asked kinds', () => {
    const text = 'pay 4111 1111 1111 1111 or mail a@b.io';
    expect(findPii(text).map((m) => m.kind)).toEqual(['card', 'email']);
    expect(findPii(text, ['email']).map((m) => m.kind)).toEqual(['email']);
  });
});

describe('PiiFilter', () => {
  const text = 'Mail ana@example.com or call +1 415-555-0142.';

  it('redacts values by kind and reports counts, never values', () => {
    const seen: unknown[] = [];
    const f = new PiiFilter({ mode: 'redact' }, (...args) => seen.push(args));
    expect(f.checkPrompt(text)).toBe('Mail [EMAIL] or call [PHONE].');
    expect(seen).toEqual([
      ['email', 'prompt', 1, 'redact'],
      ['phone', 'prompt', 1, 'redact'],
    ]);
  });

  it('blocks with the kinds found and the parameter, not the values', () => {
    const f = new PiiFilter({ mode: 'block' });
    let err: unknown;
    try {
      f.checkPrompt(text, 'messages');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PiiBlockedError);
    const e = err as PiiBlockedError;
    expect(e.code).toBe('E_PII_BLOCKED');
    expect(e.status).toBe(400);
    expect(e.param).toBe('messages');
    expect(e.kinds).toEqual(['email', 'phone']);
    expect(e.message).not.toContain('ana@example.com');
    expect(e.message).not.toContain('555');
  });

  it('passes text through in log mode and refuses bad options', () => {
    let count = 0;
    expect(new PiiFilter({ mode: 'log' }, () => count++).checkPrompt(text)).toBe(text);
    expect(count).toBe(2);
    expect(() => new PiiFilter({ mode: 'hide' as never })).toThrow(/pii.mode/);
    expect(() => new PiiFilter({ kinds: ['passport' as never] })).toThrow(/unknown kind/);
  });
});

describe('StreamRedactor', () => {
  const rows = corpus.filter((r) => r.pii.length > 0).slice(0, 200);

  it('redacts values split across chunk boundaries at every split point', () => {
    for (const row of rows.filter((_, i) => i % 7 === 0)) {
      const expected = redactMatches(row.text, findPii(row.text));
      for (let cut = 1; cut < row.text.length; cut += 3) {
        const r = new StreamRedactor(new PiiFilter({ mode: 'redact' }));
        const out = r.push(row.text.slice(0, cut)) + r.push(row.text.slice(cut)) + r.end();
        expect(out).toBe(expected);
      }
    }
  });

  it('gives the same text token by token as whole, and releases text before the end', () => {
    const text = `${'Once upon a time a bird sang a long song about the sea and the sky. '.repeat(3)}Write to bo@example.org today.`;
    const r = new StreamRedactor(new PiiFilter());
    let out = '';
    let releasedEarly = false;
    for (const word of text.split(/(?<= )/)) {
      const piece = r.push(word);
      if (piece && out === '') releasedEarly = true;
      out += piece;
    }
    out += r.end();
    expect(releasedEarly).toBe(true);
    expect(out).toBe(text.replace('bo@example.org', '[EMAIL]'));
  });

  it("stops before the first value in 'block' mode", () => {
    const r = new StreamRedactor(new PiiFilter({ mode: 'block' }));
    const text = 'The secret card is 4111 1111 1111 1111 and more text follows here.';
    let out = '';
    for (const ch of text) out += r.push(ch);
    out += r.end();
    expect(r.blocked).toBe(true);
    expect(out).toBe('The secret card is ');
  });
});
