// A small SVG line chart for the dashboard: time on x, one path per series, no dependencies.
// Every chart carries data-chart (its id) and data-points (how many samples it drew), so the page can be
// tested from a browser without reading pixels.

const SVG_NS = 'http://www.w3.org/2000/svg';
const CHART = { width: 300, height: 150, left: 44, right: 8, top: 8, bottom: 20 };

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** 1, 2 or 5 times a power of ten, at least v: round numbers for the y axis. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function formatValue(v) {
  if (v >= 1000) return `${(v / 1000).toFixed(v >= 10000 ? 0 : 1)}k`;
  if (v >= 10 || v === 0) return v.toFixed(0);
  return v.toPrecision(2);
}

/**
 * Draws (or redraws) a chart into `box`.
 * spec: { id, title, unit, times: [epoch ms], series: [{ name, color, values: [number|null], dash? }],
 *         yMax?: fixed top (e.g. 1 for fractions), empty?: text shown when no series has a value,
 *         markers?: [epoch ms] drawn as vertical lines (e.g. scaling decisions) }
 */
// biome-ignore lint/correctness/noUnusedVariables: called by dashboard.js, a classic script sharing the page's globals
function drawChart(box, spec) {
  const { width, height, left, right, top, bottom } = CHART;
  const w = width - left - right;
  const h = height - top - bottom;
  const values = spec.series
    .flatMap((s) => s.values)
    .filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  const yMax = spec.yMax ?? niceMax(Math.max(0, ...values) * 1.1);
  const t1 = spec.times.length ? spec.times[spec.times.length - 1] : Date.now();
  const t0 = Math.min(spec.times.length ? spec.times[0] : t1, t1 - 60_000);
  const sx = (t) => left + ((t - t0) / Math.max(1, t1 - t0)) * w;
  const sy = (v) => top + h - (Math.min(v, yMax) / yMax) * h;

  const svg = svgEl('svg', {
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    'data-chart': spec.id,
    'data-points': spec.times.length,
  });
  for (const f of [0, 0.5, 1]) {
    svg.append(svgEl('line', { x1: left, x2: left + w, y1: sy(f * yMax), y2: sy(f * yMax), stroke: '#e5e7eb' }));
    svg.append(
      svgEl(
        'text',
        { x: left - 4, y: sy(f * yMax) + 4, 'font-size': 10, 'text-anchor': 'end', fill: '#6b7280' },
        formatValue(f * yMax),
      ),
    );
  }
  svg.append(
    svgEl('text', { x: left, y: height - 4, 'font-size': 10, fill: '#6b7280' }, `-${Math.round((t1 - t0) / 1000)}s`),
  );
  svg.append(
    svgEl('text', { x: left + w, y: height - 4, 'font-size': 10, fill: '#6b7280', 'text-anchor': 'end' }, 'now'),
  );
  for (const t of spec.markers ?? []) {
    if (t < t0) continue;
    svg.append(
      svgEl('line', { x1: sx(t), x2: sx(t), y1: top, y2: top + h, stroke: '#a855f7', 'stroke-dasharray': '3 2' }),
    );
  }
  if (values.length === 0) {
    svg.append(
      svgEl(
        'text',
        { x: left + w / 2, y: top + h / 2, class: 'empty', 'text-anchor': 'middle' },
        spec.empty ?? 'no data yet',
      ),
    );
  }
  for (const s of spec.series) svg.append(seriesPath(s, spec.times, sx, sy));

  const legend = spec.series.map((s) => `<i style="background:${s.color}"></i>${s.name}`).join('');
  box.innerHTML = `<h3>${spec.title}${spec.unit ? ` <span class="muted">(${spec.unit})</span>` : ''}</h3><div class="legend">${legend}</div>`;
  box.append(svg);
}

/** One path; a null value breaks the line (no data in that interval) instead of drawing through it. */
function seriesPath(s, times, sx, sy) {
  let d = '';
  let pen = false;
  s.values.forEach((v, i) => {
    if (v === null || v === undefined || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    d += `${pen ? 'L' : 'M'}${sx(times[i]).toFixed(1)},${sy(v).toFixed(1)} `;
    pen = true;
  });
  const attrs = { d: d.trim(), fill: 'none', stroke: s.color, 'stroke-width': 1.8, 'data-series': s.name };
  // A dashed series stays visible where it overlaps a solid one (e.g. target over running replicas).
  if (s.dash) attrs['stroke-dasharray'] = '6 4';
  return svgEl('path', attrs);
}
