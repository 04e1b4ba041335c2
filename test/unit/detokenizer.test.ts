import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer, type DetokenizerTokenizer } from '../../packages/engine/src/detokenizer.js';
import { StopChecker } from '../../packages/engine/src/stop-checker.js';

const enc = new TextEncoder();
/** ids: 1 BOS (special), 2 EOS (special), 10.. words with a leading space, 20/21 the two bytes of 'é', 22..25 the bytes of '🙂'. */
const pieces: Record<number, Uint8Array> = {
  10: enc.encode(' Once'),
  11: enc.encode(' upon'),
  12: enc.encode('x'),
  13: enc.encode('STOP'),
  14: enc.encode('ST'),
  20: Uint8Array.of(0xc3),
  21: Uint8Array.of(0xa9),
  22: Uint8Array.of(0xf0),
  23: Uint8Array.of(0x9f),
  24: Uint8Array.of(0x99),
  25: Uint8Array.of(0x82),
};
const tok: DetokenizerTokenizer = {
  bosId: 1,
  stripsLeadingSpace: true,
  isSpecial: (id) => id === 1 || id === 2,
  tokenBytes: (id) => pieces[id] ?? new Uint8Array(0),
};

function run(prev: number, ids: number[]): string[] {
  const d = new IncrementalDetokenizer(tok, prev);
  return ids.map((id) => d.push(id));
}

describe('IncrementalDetokenizer', () => {
  it('never splits a UTF-8 character across outputs', () => {
    expect(run(12, [12, 20, 21, 22, 23, 24, 25, 12])).toEqual(['x', '', 'é', '', '', '', '🙂', 'x']);
  });

  it('drops the dummy-prefix space right after BOS only', () => {
    expect(run(1, [10, 11])).toEqual(['Once', ' upon']);
    expect(run(12, [10, 11])).toEqual([' Once', ' upon']);
    expect(run(12, [10, 1, 11])).toEqual([' Once', '', 'upon']);
  });

  it('gives special tokens no text and flushes a dangling byte as U+FFFD', () => {
    const d = new IncrementalDetokenizer(tok, 12);
    expect(d.push(2)).toBe('');
    expect(d.push(20)).toBe('');
    expect(d.flush()).toBe('\uFFFD');
  });
});

describe('StopChecker', () => {
  it('ends the text before the stop string, across token boundaries', () => {
    const s = new StopChecker(['STOP']);
    expect(s.append('hello S')).toBeNull();
    expect(s.append('TO')).toBeNull();
    expect(s.append('P and more')).toBe('STOP');
    expect(s.text).toBe('hello ');
  });

  it('holds back a tail that could become a stop string while streaming', () => {
    const s = new StopChecker(['STOP', '\n\n']);
    s.append('ab S');
    expect(s.takeDelta(false)).toBe('ab ');
    s.append('T');
    expect(s.takeDelta(false)).toBe('');
    s.append('ep\n');
    expect(s.takeDelta(false)).toBe('STep');
    expect(s.takeDelta(true)).toBe('\n');
  });

  it('includes the stop string when asked, and ignores it when not armed', () => {
    const s = new StopChecker(['!'], true);
    expect(s.append('hi!', false)).toBeNull();
    expect(s.append(' yes! no')).toBe('!');
    expect(s.text).toBe('hi! yes!');
    const streamed = new StopChecker(['END']);
    let out = '';
    for (const piece of ['a', 'E', 'N', 'x', 'EN', 'D', 'zz']) {
      if (streamed.append(piece)) break;
      out += streamed.takeDelta(false);
    }
    out += streamed.takeDelta(true);
    expect(out).toBe('aENx');
  });
});
