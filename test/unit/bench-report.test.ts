import { describe, expect, it } from 'vitest';
import { niceMax, renderLatencyPlot } from '../../packages/deployments/src/bench/plot.js';
import { renderRun, renderSweep, toJson, type RunReport } from '../../packages/deployments/src/bench/report.js';
import { computeMetrics } from '../../packages/deployments/src/bench/stats.js';
import { Progress, renderProgress } from '../../packages/core/src/cli/progress.js';

const run = (rate: number, ttft: number): RunReport => ({
  requestRate: rate,
  burstiness: 1,
  numPrompts: 2,
  errors: [],
  metrics: computeMetrics(
    [
      { ok: true, promptLen: 4, outputLen: 3, ttftMs: ttft, itlMs: [5, 5], latencyMs: ttft + 10, startMs: 0 },
      { ok: true, promptLen: 4, outputLen: 3, ttftMs: ttft * 2, itlMs: [6, 6], latencyMs: ttft * 2 + 12, startMs: 0 },
    ],
    2000 / Math.min(rate, 8),
  ),
});

describe('bench report', () => {
  it('renders a vLLM-style block and a sweep summary', () => {
    const text = renderRun(run(2, 10));
    expect(text).toMatch(/Successful requests:\s+2/);
    expect(text).toMatch(/Median TTFT \(ms\):\s+15\.00/);
    expect(text).toMatch(/P99 E2EL/);
    const sweep = renderSweep([run(1, 10), run(Infinity, 30)]);
    expect(sweep.split('\n')[2]).toMatch(/^\s*inf\s+2\s+0/);
  });

  it('writes valid JSON with inf for an unbounded rate and null for NaN', () => {
    const json = JSON.parse(toJson({ date: 'd', endpoint: 'e', model: 'm', dataset: {}, runs: [run(Infinity, 1)] }));
    expect(json.runs[0].requestRate).toBe('inf');
    expect(json.runs[0].metrics.goodput).toBeUndefined();
  });

  it('plots one path per series per panel, with a point per run', () => {
    const svg = renderLatencyPlot([run(4, 30), run(1, 10), run(Infinity, 50)]);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(9);
    expect(svg.match(/<circle /g)).toHaveLength(27);
    const firstPath = /<path d="([^"]+)"/.exec(svg)![1]!;
    expect(firstPath.split(' ')).toHaveLength(3);
    expect(svg).toContain('>inf<');
    expect(niceMax(37)).toBe(50);
    expect(niceMax(0.13)).toBeCloseTo(0.2);
  });
});

describe('progress', () => {
  it('renders a bar on a TTY and plain lines elsewhere', () => {
    const line = renderProgress({ label: 'load', done: 5, total: 10, elapsedMs: 1500, unit: 'count', bar: true });
    expect(line).toBe('load [############............]  50%  5/10  1.5s');
    expect(
      renderProgress({ label: 'load', done: 3 * 2 ** 20, total: 0, elapsedMs: 0, unit: 'bytes', bar: false }),
    ).toBe('load  3.0 MiB  0.0s');
  });

  it('throttles plain lines and always prints the last one', () => {
    let t = 0;
    const written: string[] = [];
    const stream = {
      write: (s: string) => {
        written.push(s);
        return true;
      },
      isTTY: false,
    } as never;
    const p = new Progress({ label: 'x', stream, now: () => t, lineIntervalMs: 1000 });
    for (let i = 1; i <= 10; i++) {
      t += 100;
      p.update(i, 10);
    }
    p.finish('done');
    expect(written).toEqual(['x  10%  1/10  0.1s\n', 'x 100%  10/10  1.0s\n', 'x 100%  10/10  1.0s  done\n']);
  });
});
