/**
 * Reads Prometheus text exposition (what GET /metrics serves) back into prom-client's JSON shape, so
 * the dashboard plots exactly what /metrics serves — including metrics merged in at scrape time from
 * elsewhere (e.g. replicas' LLM metrics) that never enter the proxy's own registry.
 */
import type { MetricJson } from './timeseries.js';

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const SUFFIXES = ['_bucket', '_sum', '_count'];

export function parsePrometheusText(text: string): MetricJson[] {
  const types = new Map<string, string>();
  const metrics = new Map<string, MetricJson>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (name && type) types.set(name, type);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) continue;
    const [, metricName, labelText, valueText] = m;
    const family = familyOf(metricName!, types);
    const labels: Record<string, string> = {};
    for (const l of (labelText ?? '').matchAll(LABEL))
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    const entry = metrics.get(family) ?? { name: family, type: types.get(family) ?? 'untyped', values: [] };
    metrics.set(family, entry);
    entry.values.push({ value: Number(valueText), labels, metricName });
  }
  return [...metrics.values()];
}

/** 'x_bucket' belongs to histogram 'x' when 'x' is declared a histogram or summary. */
function familyOf(metricName: string, types: Map<string, string>): string {
  if (types.has(metricName)) return metricName;
  for (const suffix of SUFFIXES) {
    if (!metricName.endsWith(suffix)) continue;
    const base = metricName.slice(0, -suffix.length);
    if (types.has(base)) return base;
  }
  return metricName;
}
