import { describe, expect, it } from 'vitest';
import { judge, resolveSafetyPolicy, SafetyOutputFilter } from '../../packages/deployments/src/safety/safety-policy.js';

/** A classifier over plain data: unsafe exactly when the text mentions a dragon. */
const dragons = async (text: string) => ({ score: /dragon/i.test(text) ? 0.97 : 0.02 });

describe('content-safety policy', () => {
  it('decides by threshold and mode, and reports each decision with its latency', async () => {
    const seen: string[] = [];
    const hook = (where: string, decision: string, s: number) => {
      expect(s).toBeGreaterThanOrEqual(0);
      seen.push(`${where}:${decision}`);
    };
    const block = resolveSafetyPolicy({ threshold: 0.5 });
    expect((await judge(block, dragons, 'a dragon', 'prompt', hook)).decision).toBe('block');
    expect((await judge(block, dragons, 'a cat', 'prompt', hook)).decision).toBe('allow');
    const redact = resolveSafetyPolicy({ mode: 'redact' });
    expect((await judge(redact, dragons, 'a dragon', 'output', hook)).decision).toBe('redact');
    expect((await judge(redact, dragons, 'a dragon', 'prompt', hook)).decision).toBe('block'); // prompts are refused, not redacted
    const log = resolveSafetyPolicy({ mode: 'log' });
    expect((await judge(log, dragons, 'a dragon', 'output', hook)).decision).toBe('flag');
    expect(seen).toEqual(['prompt:block', 'prompt:allow', 'output:redact', 'prompt:block', 'output:flag']);
  });

  it('refuses bad options and bad scores', async () => {
    expect(() => resolveSafetyPolicy({ threshold: 2 })).toThrow(/threshold/);
    expect(() => resolveSafetyPolicy({ windowChars: 0 })).toThrow(/windowChars/);
    await expect(
      judge(
        resolveSafetyPolicy(),
        async () => ({ score: Number.NaN }),
        'x',
        'prompt',
        () => {},
      ),
    ).rejects.toThrow(/not in \[0, 1\]/);
  });

  it('releases output a judged window at a time and cuts before an unsafe window', async () => {
    const text = 'Once upon a time a cat sat. Then a dragon came to town and roared. The end.';
    const f = new SafetyOutputFilter(resolveSafetyPolicy({ windowChars: 10 }), dragons, () => {});
    let out = '';
    for (const ch of text) out += await f.push(ch);
    out += await f.end();
    expect(f.blocked).toBe(true);
    // "dragon" straddles two windows ("Then a dra" | "gon came t"): judged with the previous window as
    // context, the second is withheld, and everything after it.
    const end = text.indexOf('dragon') + 'dragon'.length;
    expect(out).toBe(text.slice(0, Math.floor(end / 10) * 10 - (end % 10 === 0 ? 10 : 0)));
    expect(out).not.toContain('dragon');
  });

  it('replaces unsafe windows in redact mode and keeps the rest', async () => {
    const f = new SafetyOutputFilter(resolveSafetyPolicy({ windowChars: 8, mode: 'redact' }), dragons, () => {});
    const out = (await f.push('abcdefghDRAGON!!ijklmnop')) + (await f.end());
    expect(out).toBe('abcdefgh[removed]ijklmnop');
    expect(f.blocked).toBe(false);
  });
});
