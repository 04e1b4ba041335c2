// The dashboard page: polls /-/status (what `serve status` prints) and /-/timeseries (the proxy's
// sampler) once a second and redraws. Plain script, no build step; charts come from charts.js.

const POLL_MS = 1000;
const state = { samples: [], decisions: [], capacity: 300, lastT: 0 };
const COLORS = { a: '#2563eb', b: '#dc2626', c: '#16a34a', d: '#9333ea' };

const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
const badge = (s) => `<span class="state ${esc(s)}">${esc(s)}</span>`;

async function getJson(path) {
  const res = await fetch(path, { cache: 'no-store' });
  if (!res.ok) throw new Error(`${path} answered ${res.status}`);
  return res.json();
}

function renderSummary(status) {
  const up = Math.round((Date.now() - status.startedAtMs) / 1000);
  const deps = status.applications.reduce((n, a) => n + a.deployments.length, 0);
  document.getElementById('summary').textContent =
    `${status.applications.length} application(s), ${deps} deployment(s), up ${up}s${status.grpc ? `  ·  gRPC ${status.grpc}` : ''}`;
  document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

/** Replicas grouped by the node they run on: the per-node view of a deployment. */
function replicasByNode(replicas) {
  const nodes = new Map();
  for (const r of replicas) nodes.set(r.node, [...(nodes.get(r.node) ?? []), r]);
  if (nodes.size === 0) return '<span class="muted">no replicas</span>';
  return [...nodes]
    .map(
      ([node, rs]) =>
        `<div class="node"><span class="muted">${esc(node)}:</span> ` +
        rs
          .map(
            (r) =>
              `<span class="replica" data-replica="${esc(r.id)}">${esc(r.id)} ${badge(r.state)} ${esc(r.placement)}` +
              `${r.pid ? ` pid ${r.pid}` : ''} · ${r.ongoing} ongoing</span>`,
          )
          .join('') +
        '</div>',
    )
    .join('');
}

function renderApps(status) {
  const box = document.getElementById('apps');
  if (status.applications.length === 0) {
    box.textContent = 'no applications';
    return;
  }
  box.classList.remove('muted');
  box.innerHTML = status.applications
    .map(
      (app) => `<div class="app" data-app="${esc(app.name)}">
    <h3>${esc(app.name)} ${badge(app.status)} <span class="muted">route ${esc(app.routePrefix)}</span></h3>
    <table><tr><th>DEPLOYMENT</th><th>STATUS</th><th>REPLICAS</th><th>ONGOING</th><th>QUEUED</th><th>REPLICAS BY NODE</th></tr>
    ${app.deployments
      .map(
        (d) => `<tr data-deployment="${esc(app.name)}/${esc(d.name)}">
      <td>${esc(d.name)}</td><td>${badge(d.status)}</td>
      <td>${d.replicas.filter((r) => r.state === 'RUNNING').length}/${d.targetReplicas}</td>
      <td>${d.ongoing}</td><td>${d.queued}</td>
      <td>${replicasByNode(d.replicas)}${d.message ? `<div class="cause">${esc(d.message)}</div>` : ''}</td></tr>`,
      )
      .join('')}
    </table></div>`,
    )
    .join('');
}

function series(key, pick) {
  return state.samples.map((s) => (s.deployments[key] ? pick(s.deployments[key]) : null));
}

/** The chart specs of one deployment: serving figures, then LLM figures (labelled empty when absent). */
function chartSpecs(key) {
  const times = state.samples.map((s) => s.t);
  const hasLlm = state.samples.some((s) => s.deployments[key]?.llm);
  const noLlm = 'no LLM metrics from this deployment';
  const llm = (pick) => series(key, (p) => (p.llm ? pick(p.llm) : null));
  const markers = state.decisions.filter((d) => `${d.app}/${d.deployment}` === key).map((d) => d.atMs);
  const specs = [
    {
      id: 'requests',
      title: 'Request rate',
      unit: 'req/s',
      series: [
        { name: 'requests', color: COLORS.a, values: series(key, (p) => p.requestsPerS) },
        { name: 'errors', color: COLORS.b, values: series(key, (p) => p.errorsPerS) },
      ],
    },
    {
      id: 'latency',
      title: 'Latency',
      unit: 'ms',
      empty: 'no finished calls yet',
      series: [
        { name: 'p50', color: COLORS.a, values: series(key, (p) => p.p50Ms) },
        { name: 'p99', color: COLORS.b, values: series(key, (p) => p.p99Ms) },
      ],
    },
    {
      id: 'queue',
      title: 'Queue and in flight',
      unit: 'requests',
      series: [
        { name: 'ongoing', color: COLORS.a, values: series(key, (p) => p.ongoing) },
        { name: 'queued', color: COLORS.b, values: series(key, (p) => p.queued) },
      ],
    },
    {
      id: 'replicas',
      title: 'Replicas (dashed: scaling decision)',
      unit: 'count',
      markers,
      series: [
        { name: 'running', color: COLORS.c, values: series(key, (p) => p.running) },
        { name: 'target', color: COLORS.d, dash: true, values: series(key, (p) => p.targetReplicas) },
      ],
    },
    {
      id: 'tokens',
      title: 'Tokens/s',
      unit: 'tok/s',
      empty: noLlm,
      series: [{ name: 'generated', color: COLORS.a, values: llm((l) => l.tokensPerS) }],
    },
    {
      id: 'ttft',
      title: 'Time to first token',
      unit: 'ms',
      empty: hasLlm ? 'no finished requests yet' : noLlm,
      series: [
        { name: 'p50', color: COLORS.a, values: llm((l) => l.ttftP50Ms) },
        { name: 'p99', color: COLORS.b, values: llm((l) => l.ttftP99Ms) },
      ],
    },
    {
      id: 'kv',
      title: 'KV-cache usage',
      unit: 'fraction',
      yMax: 1,
      empty: noLlm,
      series: [{ name: 'used', color: COLORS.d, values: llm((l) => l.kvUsage) }],
    },
    {
      id: 'cost',
      title: 'Cost per 1K tokens (since start, replica-hours included)',
      unit: 'USD',
      empty: state.samples.some((s) => s.deployments[key]?.cost) ? 'no tokens reported yet' : 'no cost prices',
      series: [
        { name: 'USD / 1K tokens', color: COLORS.b, values: series(key, (p) => p.cost?.per1kTokensUsd ?? null) },
      ],
    },
    {
      id: 'prefix',
      title: 'Prefix-cache hit rate',
      unit: 'fraction',
      yMax: 1,
      empty: hasLlm ? 'no prompts in the interval' : noLlm,
      series: [{ name: 'hits', color: COLORS.c, values: llm((l) => l.prefixHitRate) }],
    },
  ];
  return specs.map((s) => ({ ...s, times }));
}

function renderCharts() {
  const root = document.getElementById('charts');
  const keys = [...new Set(state.samples.flatMap((s) => Object.keys(s.deployments)))].sort();
  for (const key of keys) {
    let card = root.querySelector(`[data-charts="${CSS.escape(key)}"]`);
    if (!card) {
      card = document.createElement('div');
      card.className = 'deployment-charts';
      card.dataset.charts = key;
      card.innerHTML = `<h3>${esc(key)}</h3><div class="chart-row"></div>`;
      root.append(card);
    }
    const row = card.querySelector('.chart-row');
    for (const spec of chartSpecs(key)) {
      let box = row.querySelector(`[data-box="${spec.id}"]`);
      if (!box) {
        box = document.createElement('div');
        box.className = 'chart';
        box.dataset.box = spec.id;
        row.append(box);
      }
      drawChart(box, spec);
    }
  }
}

function renderDecisions() {
  const box = document.getElementById('decisions');
  if (state.decisions.length === 0) return;
  box.classList.remove('muted');
  box.innerHTML = `<table><tr><th>TIME</th><th>DEPLOYMENT</th><th>REPLICAS</th><th>REASON</th><th>WHY</th></tr>${state.decisions
    .slice(-20)
    .reverse()
    .map(
      (d) => `<tr><td>${new Date(d.atMs).toLocaleTimeString()}</td>
      <td>${esc(d.app)}/${esc(d.deployment)}</td><td>${d.from} → ${d.to}</td><td>${esc(d.reason)}</td><td>${esc(d.message)}</td></tr>`,
    )
    .join('')}</table>`;
}

async function poll() {
  try {
    const [status, ts] = await Promise.all([getJson('/-/status'), getJson(`/-/timeseries?since=${state.lastT}`)]);
    state.capacity = ts.capacity;
    state.samples = [...state.samples, ...ts.samples].slice(-state.capacity);
    if (state.samples.length) state.lastT = state.samples[state.samples.length - 1].t;
    state.decisions = ts.decisions;
    renderSummary(status);
    renderApps(status);
    renderCharts();
    renderDecisions();
  } catch (err) {
    document.getElementById('updated').textContent = `cannot reach the proxy (${err.message}); retrying`;
  }
  setTimeout(poll, POLL_MS);
}

poll();
