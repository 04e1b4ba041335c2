/**
 * An SVG of latency against load for a rate sweep: one panel each for TTFT, TPOT and end-to-end latency,
 * lines for mean, p50 and p99. The x axis is the achieved request throughput (an offered rate of inf
 * has no position of its own), and each point is labelled with the offered rate. Pure: data in, text out.
 */
import { rateLabel, type RunReport } from './report.js';
import type { BenchMetrics, Distribution } from './stats.js';

const PANEL_W = 300;
const PANEL_H = 240;
const PAD = { left: 52, right: 12, top: 28, bottom: 40 };
const SERIES = [
  { name: 'mean', color: '#2563eb', pick: (d: Distribution) => d.mean },
  { name: 'p50', color: '#16a34a', pick: (d: Distribution) => d.percentiles['50'] },
  { name: 'p99', color: '#dc2626', pick: (d: Distribution) => d.percentiles['99'] },
];
const PANELS: Array<{ title: string; pick: (m: BenchMetrics) => Distribution }> = [
  { title: 'TTFT (ms)', pick: (m) => m.ttftMs },
  { title: 'TPOT (ms)', pick: (m) => m.tpotMs },
  { title: 'E2E latency (ms)', pick: (m) => m.e2elMs },
];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : n.toPrecision(3).replace(/\.?0+$/, ''));

/** "Nice" upper bound for an axis: 1, 2 or 5 times a power of ten. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 5, 10].find((m) => m * p >= v) ?? 10) * p;
}

export function renderLatencyPlot(runs: readonly RunReport[], title = 'Latency against request rate'): string {
  const points = [...runs].sort((a, b) => a.metrics.requestThroughput - b.metrics.requestThroughput);
  const width = PANEL_W * PANELS.length;
  const height = PANEL_H + 56;
  const body = PANELS.map((p, i) => panel(points, p, i * PANEL_W, 36)).join('\n');
  const legend = SERIES.map(
    (s, i) =>
      `<g transform="translate(${width - 210 + i * 70},14)"><line x2="18" stroke="${s.color}" stroke-width="2"/>` +
      `<text x="22" y="4" font-size="11">${s.name}</text></g>`,
  ).join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n<text x="10" y="18" font-size="14" font-weight="bold">${esc(title)}</text>${legend}\n` +
    `${body}\n</svg>\n`
  );
}

function panel(runs: readonly RunReport[], p: (typeof PANELS)[number], x0: number, y0: number): string {
  const w = PANEL_W - PAD.left - PAD.right;
  const h = PANEL_H - PAD.top - PAD.bottom;
  const xs = runs.map((r) => r.metrics.requestThroughput);
  const values = runs
    .flatMap((r) => SERIES.map((s) => s.pick(p.pick(r.metrics))))
    .filter((v): v is number => Number.isFinite(v));
  const xMax = niceMax(Math.max(0, ...xs) * 1.05);
  const yMax = niceMax(Math.max(0, ...values) * 1.05);
  const sx = (v: number) => PAD.left + (v / xMax) * w;
  const sy = (v: number) => PAD.top + h - (v / yMax) * h;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const grid = ticks
    .map(
      (t) =>
        `<line x1="${PAD.left}" x2="${PAD.left + w}" y1="${sy(t * yMax)}" y2="${sy(t * yMax)}" stroke="#e5e7eb"/>` +
        `<text x="${PAD.left - 4}" y="${sy(t * yMax) + 4}" font-size="10" text-anchor="end">${num(t * yMax)}</text>` +
        `<text x="${sx(t * xMax)}" y="${PAD.top + h + 14}" font-size="10" text-anchor="middle">${num(t * xMax)}</text>`,
    )
    .join('');
  const lines = SERIES.map((s) => {
    const pts = runs
      .map((r) => [sx(r.metrics.requestThroughput), s.pick(p.pick(r.metrics))] as const)
      .filter(([, v]) => v !== undefined && Number.isFinite(v))
      .map(([x, v]) => [x, sy(v!)] as const);
    if (pts.length === 0) return '';
    const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
    return (
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2" data-series="${s.name}"/>` +
      pts.map(([x, y]) => `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3" fill="${s.color}"/>`).join('')
    );
  }).join('');
  const labels = runs
    .map(
      (r) =>
        `<text x="${sx(r.metrics.requestThroughput)}" y="${PAD.top - 4}" font-size="9" text-anchor="middle" fill="#6b7280">` +
        `${esc(rateLabel(r.requestRate))}</text>`,
    )
    .join('');
  return (
    `<g transform="translate(${x0},${y0})"><text x="${PAD.left}" y="12" font-size="12" font-weight="bold">${esc(p.title)}</text>` +
    `${grid}<rect x="${PAD.left}" y="${PAD.top}" width="${w}" height="${h}" fill="none" stroke="#9ca3af"/>${lines}${labels}` +
    `<text x="${PAD.left + w / 2}" y="${PAD.top + h + 30}" font-size="10" text-anchor="middle">achieved req/s (labels: offered rate)</text></g>`
  );
}
