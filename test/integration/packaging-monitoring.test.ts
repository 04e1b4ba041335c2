/**
 * The monitoring kit (issue #23 item 4) against a real server: `serve run` of an application with an LLM,
 * guards, a hybrid router and a response cache on stories260K (test/fixtures/apps/monitoring-app.ts)
 * answers a few requests, then every metric a panel or variable of deploy/grafana/flotilla.json queries
 * must be on its /metrics (histograms by their _bucket/_sum/_count series), with samples, and every label
 * a query groups or filters by must be on those series. The prometheus-adapter rule and the Prometheus
 * scrape configuration must fit the manifests `serve build` writes and the series /metrics serves.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildCommand } from '../../packages/core/src/cli/build-command.js';
import { models, repoRoot } from '../helpers/models.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';

type Obj = Record<string, any>;

const dashboard = JSON.parse(readFileSync(path.join(repoRoot, 'deploy/grafana/flotilla.json'), 'utf8')) as Obj;

/** Series of one exposition: metric name, labels, and the # TYPE of each family. */
interface Exposition {
  types: Map<string, string>;
  samples: Array<{ name: string; labels: Record<string, string> }>;
}

function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Exposition['samples'] = [];
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels });
  }
  return { types, samples };
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
]);

/**
 * The metric names and label names a PromQL expression uses. Label names: those in matchers and in
 * by/without/on/ignoring lists. Metric names: identifiers left once strings, matchers, ranges, label
 * lists and function calls are set aside (and label_values()'s first argument).
 */
function promqlNames(expr: string): { metrics: Set<string>; labels: Set<string> } {
  const metrics = new Set<string>();
  const labels = new Set<string>();
  let e = expr;
  const lv = /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(\{[^}]*\})?\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/.exec(e);
  if (lv) {
    if (lv[1]) metrics.add(lv[1]);
    labels.add(lv[3]!);
    e = lv[2] ? `${lv[1] ?? ''}${lv[2]}` : (lv[1] ?? '');
  }
  e = e.replace(/\{([^}]*)\}/g, (_m, inner: string) => {
    for (const l of inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"/g)) labels.add(l[1]!);
    return ' ';
  });
  e = e.replace(/"(?:[^"\\]|\\.)*"/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _k, list: string) => {
    for (const l of list
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean))
      labels.add(l);
    return ' ';
  });
  for (const m of e.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!) || /^\d/.test(m[1]!)) continue;
    metrics.add(m[1]!);
  }
  return { metrics, labels };
}

/** Every query of the dashboard: its panels' targets and its query variables, with where they are. */
function dashboardQueries(d: Obj): Array<{ where: string; expr: string; legend?: string }> {
  const out: Array<{ where: string; expr: string; legend?: string }> = [];
  const visit = (panels: Obj[]) => {
    for (const p of panels) {
      for (const t of (p.targets ?? []) as Obj[])
        out.push({ where: `panel "${p.title}"`, expr: t.expr, legend: t.legendFormat });
      if (p.panels) visit(p.panels);
    }
  };
  visit(d.panels);
  for (const v of d.templating.list as Obj[])
    if (v.type === 'query')
      out.push({ where: `variable $${v.name}`, expr: typeof v.query === 'string' ? v.query : v.query.query });
  return out;
}

/** A histogram's _bucket/_sum/_count series name the histogram. */
function familyOf(name: string, types: Map<string, string>): string {
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && types.get(base) === 'histogram' ? base : name;
}

/**
 * Metrics a request flow cannot make happen on its own: they need @batch methods, autoscaling, a failing
 * model, or an engine that speculates (vLLM's spec-decode counters exist only then, as in vLLM).
 */
const EVENT_ONLY = new Set([
  'flotilla_batch_size',
  'flotilla_scaling_decisions_total',
  'flotilla_hybrid_failures_total',
  'vllm:spec_decode_num_accepted_tokens_total',
  'vllm:spec_decode_num_draft_tokens_total',
]);
/** Labels Prometheus adds (deploy/prometheus/prometheus.yml), not the exporter; `le` is a histogram's. */
const SCRAPE_LABELS = new Set(['instance', 'job', 'namespace', 'component', 'flotilla', 'pod', 'le']);

let server: ServeRun;
let exposition: Exposition;
const out = mkdtempSync(path.join(os.tmpdir(), 'flotilla-monitoring-'));

describe('the Grafana dashboard, the adapter rule and the scrape config against a real /metrics', () => {
  beforeAll(async () => {
    server = await serveRun(
      ['test/fixtures/apps/monitoring-app.ts:app', `model=${models.stories260K}`, `tokenizer=${models.tok512}`],
      180_000,
    );
    const post = (p: string, body: unknown) =>
      fetch(`${server.url}${p}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    // Guarded completions (PII found and redacted, prompts and outputs judged), twice for prefix-cache hits.
    for (let i = 0; i < 2; i++) {
      const r = await post('/v1/completions', { prompt: 'Lily wrote to lily@example.com and', max_tokens: 8 });
      expect(r.status, await r.clone().text()).toBe(200);
      await r.text();
    }
    // The hybrid router: a hard prompt (large model), an easy one (small) twice (the second from the cache).
    for (const prompt of ['Explain why the sun is hot', 'Once', 'Once']) {
      const r = await post('/hybrid', { prompt, max_tokens: 4, temperature: 0 });
      expect(r.status, await r.clone().text()).toBe(200);
      await r.text();
    }
    // A refused request: counted by the proxies by error code.
    expect((await post('/hybrid', '"not an object"')).status).toBe(400);
    exposition = parseExposition(await (await fetch(`${server.url}/metrics`)).text());
  }, 240_000);
  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
    rmSync(out, { recursive: true, force: true });
  });

  it('is a dashboard Grafana can load: unique panel ids inside the 24-column grid, every query on the Prometheus variable', () => {
    expect(dashboard.uid).toBeTruthy();
    const ids = (dashboard.panels as Obj[]).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels as Obj[]) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      // Grafana's variable syntax, not a template literal.
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: ['$', '{datasource}'].join('') });
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
    expect((dashboard.templating.list as Obj[]).find((v) => v.name === 'datasource')?.type).toBe('datasource');
  });

  it('reads metric and label names out of PromQL', () => {
    expect(
      promqlNames(
        'histogram_quantile(0.99, sum by (le, model_name) (rate(flotilla_llm_time_to_first_token_seconds_bucket{app=~"$app"}[$__rate_interval])))',
      ),
    ).toEqual({
      metrics: new Set(['flotilla_llm_time_to_first_token_seconds_bucket']),
      labels: new Set(['app', 'le', 'model_name']),
    });
    expect(promqlNames('sum(rate(a_total[5m])) / sum(rate(b_total{x="y"}[5m])) * 3600')).toEqual({
      metrics: new Set(['a_total', 'b_total']),
      labels: new Set(['x']),
    });
    expect(promqlNames('label_values(flotilla_deployment_healthy{app=~"$app"}, deployment)')).toEqual({
      metrics: new Set(['flotilla_deployment_healthy']),
      labels: new Set(['app', 'deployment']),
    });
  });

  it('queries only metrics that /metrics serves, each with samples after a few requests', () => {
    const queried = new Map<string, string>();
    for (const q of dashboardQueries(dashboard))
      for (const m of promqlNames(q.expr).metrics) queried.set(familyOf(m, exposition.types), q.where);
    expect(queried.size).toBeGreaterThan(30);
    const sampled = new Set(exposition.samples.map((s) => familyOf(s.name, exposition.types)));
    const missing = [...queried].filter(([m]) => !exposition.types.has(m)).map(([m, w]) => `${m} (${w})`);
    expect(missing, 'metrics the dashboard queries that /metrics does not export').toEqual([]);
    const empty = [...queried.keys()].filter((m) => !sampled.has(m) && !EVENT_ONLY.has(m));
    expect(empty, 'metrics exported without samples after the requests').toEqual([]);
    // The exceptions are real panels' metrics, so the list cannot rot.
    for (const m of EVENT_ONLY) expect(queried.has(m), m).toBe(true);
  });

  it('groups and filters by labels those series have', () => {
    const labelsOf = new Map<string, Set<string>>();
    for (const s of exposition.samples) {
      const fam = familyOf(s.name, exposition.types);
      const set = labelsOf.get(fam) ?? new Set<string>();
      for (const l of Object.keys(s.labels)) set.add(l);
      labelsOf.set(fam, set);
    }
    const problems: string[] = [];
    for (const q of dashboardQueries(dashboard)) {
      const { metrics, labels } = promqlNames(q.expr);
      const fams = [...metrics].map((m) => familyOf(m, exposition.types)).filter((m) => labelsOf.has(m));
      if (fams.length === 0) continue; // an event-only metric without samples yet
      const legend = [...(q.legend ?? '').matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((m) => m[1]!);
      for (const l of [...labels, ...legend])
        if (!SCRAPE_LABELS.has(l) && !fams.some((f) => labelsOf.get(f)!.has(l))) problems.push(`${q.where}: ${l}`);
    }
    expect(problems).toEqual([]);
  });

  it("serves the HPA's metric through the adapter rule, from pods the scrape configuration keeps", async () => {
    await buildCommand('examples/cluster.ts:app', [], { out }, repoRoot);
    const hpa = parse(readFileSync(path.join(out, 'gpu-agent-hpa.yaml'), 'utf8')) as Obj;
    const head = parse(readFileSync(path.join(out, 'head-deployment.yaml'), 'utf8')) as Obj;
    const rule = (parse(readFileSync(path.join(repoRoot, 'deploy/prometheus-adapter/rules.yaml'), 'utf8')) as Obj).rules
      .external[0] as Obj;
    const metric = hpa.spec.metrics[0].external.metric as Obj;
    expect(rule.name.as).toBe(metric.name);
    // The HPA's selector, as the adapter turns it into label matchers, selects the head's series on /metrics
    // (here for a deployment of the running application, as labels app and deployment).
    expect(Object.keys(metric.selector.matchLabels).sort()).toEqual(['app', 'deployment']);
    const series = exposition.samples.filter((s) => s.name === metric.name);
    expect(series.map((s) => s.labels.deployment)).toContain('MonModel');
    for (const s of series) expect(Object.keys(s.labels).sort()).toEqual(['app', 'deployment']);
    // The labels the rule needs beyond the exporter's come from the scrape configuration's relabelling.
    const prom = parse(readFileSync(path.join(repoRoot, 'deploy/prometheus/prometheus.yml'), 'utf8')) as Obj;
    const job = (prom.scrape_configs as Obj[]).find((j) => j.kubernetes_sd_configs)!;
    const added = new Set((job.relabel_configs as Obj[]).map((r) => r.target_label).filter(Boolean));
    const needed = promqlNames(rule.seriesQuery).labels;
    for (const l of needed) expect(added, `label ${l} of the adapter's seriesQuery`).toContain(l);
    expect(rule.seriesQuery).toContain('component="head"');
    // The pods it keeps: those `serve build` labels part-of flotilla, on their port named http.
    const pod = head.spec.template;
    for (const r of (job.relabel_configs as Obj[]).filter((x) => x.action === 'keep')) {
      const source = r.source_labels[0] as string;
      const re = new RegExp(`^(?:${r.regex})$`);
      if (source === '__meta_kubernetes_pod_label_app_kubernetes_io_part_of')
        expect(pod.metadata.labels['app.kubernetes.io/part-of']).toMatch(re);
      else if (source === '__meta_kubernetes_pod_container_port_name')
        expect(pod.spec.containers[0].ports.map((p: Obj) => p.name)).toContainEqual(expect.stringMatching(re));
      else throw new Error(`unexpected keep rule on ${source}`);
    }
    const component = (job.relabel_configs as Obj[]).find((r) => r.target_label === 'component')!;
    expect(component.source_labels).toEqual(['__meta_kubernetes_pod_label_app_kubernetes_io_component']);
    expect(pod.metadata.labels['app.kubernetes.io/component']).toBe('head');
  });
});
