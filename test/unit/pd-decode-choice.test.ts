import { describe, expect, it } from 'vitest';
import { DecodeChoice } from '../../packages/deployments/src/pd/decode-choice.js';

const rep = (replicaId: string, freeBlocks: number) => ({ replicaId, freeBlocks, totalBlocks: 100, blockSize: 16 });

describe('DecodeChoice (decode replica with the most free KV)', () => {
  it('leaves the choice to the core router until replicas have reported', () => {
    const c = new DecodeChoice({ exploreEvery: 0 });
    expect(c.choose(4, 0)).toBeUndefined();
    c.report(rep('a', 10), 0);
    c.report(rep('b', 50), 0);
    expect(c.choose(4, 0)).toBe('b');
    expect(c.blockSize).toBe(16);
  });

  it('counts blocks it sent since a report, until a report that includes them', () => {
    const c = new DecodeChoice({ exploreEvery: 0 });
    c.report(rep('a', 30), 0);
    c.report(rep('b', 40), 0);
    expect(c.choose(20, 0)).toBe('b'); // b: 40 - 20 = 20 believed free
    expect(c.believedFree('b')).toBe(20);
    expect(c.choose(5, 0)).toBe('a'); // a: 30 > 20
    // b's stream reports after importing the request sent there: its 20 blocks are in the report now
    c.report(rep('b', 18), 1, 20);
    expect(c.believedFree('b')).toBe(18);
    expect(c.believedFree('a')).toBe(25);
    expect(c.choose(1, 1)).toBe('a');
  });

  it('gives back blocks of a request that never reached the chosen pool', () => {
    const c = new DecodeChoice({ exploreEvery: 0 });
    c.report(rep('a', 30), 0);
    expect(c.choose(10, 0)).toBe('a');
    expect(c.believedFree('a')).toBe(20);
    c.release('a', 10);
    expect(c.believedFree('a')).toBe(30);
    c.release('a', 10); // never below the report
    expect(c.believedFree('a')).toBe(30);
  });

  it('forgets stale reports and failed replicas, and refuses none that lack room', () => {
    const c = new DecodeChoice({ maxAgeMs: 1000, exploreEvery: 0 });
    c.report(rep('a', 80), 0);
    c.report(rep('b', 10), 900);
    expect(c.choose(1, 1500)).toBe('b'); // a's report is 1.5 s old
    c.forget('b');
    expect(c.choose(1, 1500)).toBeUndefined();
    c.report(rep('c', 3), 1500);
    expect(c.choose(4, 1500)).toBeUndefined(); // nobody has room by the reports: the core router decides
  });

  it('leaves every exploreEvery-th choice to the core router, so unreported replicas get requests', () => {
    const c = new DecodeChoice({ exploreEvery: 4 });
    c.report(rep('a', 1000), 0);
    const picks = Array.from({ length: 8 }, () => c.choose(1, 0));
    expect(picks).toEqual(['a', 'a', 'a', undefined, 'a', 'a', 'a', undefined]);
  });
});
