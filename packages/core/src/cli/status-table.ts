/** Renders a ServeStatus (GET /-/status) as the readable table `serve status` prints. */
import type { ServeStatus } from '../contract/status.js';

export function renderStatus(status: ServeStatus, now = Date.now()): string {
  const lines: string[] = [];
  lines.push(
    `Flotilla — up ${formatDuration(now - status.startedAtMs)}` +
      `${status.http ? `  http ${status.http}` : ''}${status.grpc ? `  grpc ${status.grpc}` : ''}`,
  );
  lines.push(...renderLeader(status));
  if (status.applications.length === 0) return `${lines.join('\n')}\n(no applications)\n`;
  for (const app of status.applications) {
    lines.push('', `application ${app.name}  ${app.status}  route ${app.routePrefix}`);
    const rows: string[][] = [
      ['DEPLOYMENT', 'STATUS', 'REPLICAS', 'ONGOING', 'QUEUED', 'REPLICA', 'STATE', 'PLACEMENT', 'PID', 'NODE'],
    ];
    for (const d of app.deployments) {
      const running = d.replicas.filter((r) => r.state === 'RUNNING').length;
      const head = [d.name, d.status, `${running}/${d.targetReplicas}`, String(d.ongoing), String(d.queued)];
      if (d.replicas.length === 0) rows.push([...head, '-', '-', '-', '-', '-']);
      d.replicas.forEach((r, i) =>
        rows.push([
          ...(i === 0 ? head : ['', '', '', '', '']),
          r.id,
          r.state,
          r.placement,
          r.pid === undefined ? '-' : String(r.pid),
          r.node,
        ]),
      );
    }
    lines.push(...table(rows).map((l) => `  ${l}`));
    for (const d of app.deployments) if (d.message) lines.push(`  ${d.name}: ${d.message}`);
    if (app.deployments.some((d) => d.status === 'FAILED')) {
      lines.push(
        '  next: fix the cause above (constructor, options or model path), then deploy again with `serve run`.',
      );
    }
    lines.push(...renderDecisions(app.deployments, now));
    lines.push(...renderModels(app.deployments));
  }
  lines.push(...renderNodes(status));
  return `${lines.join('\n')}\n`;
}

/** Heads that elect a leader: `leader: this head (state etcd://…)` or `standby: the leader is ID at HOST:PORT`. */
function renderLeader(status: ServeStatus): string[] {
  if (status.leader === undefined) return [];
  const head = status.leaderHead;
  const where = status.state ? ` (state ${status.state})` : '';
  if (status.leader) return [`leader: this head${where}`];
  return [`standby: ${head ? `the leader is ${head.id} at ${head.cluster}` : 'no leader elected yet'}${where}`];
}

/** A cluster head's nodes: `n1  ALIVE  host  2 CPUs 1 GPUs  free …  1 replica`, dead ones with the reason. */
function renderNodes(status: ServeStatus): string[] {
  if (!status.nodes) return [];
  const rows = status.nodes.map((n) => [
    n.id,
    n.state,
    n.address,
    `${n.resources.cpus}/${n.resources.gpus}/${n.resources.memoryMb}`,
    n.free ? `${round(n.free.cpus)}/${round(n.free.gpus)}/${round(n.free.memoryMb)}` : '-',
    String(n.replicas),
    n.message ??
      Object.entries(n.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
  ]);
  return [
    '',
    `  nodes (cluster ${status.cluster ?? '?'})`,
    ...table([['NODE', 'STATE', 'ADDRESS', 'CPU/GPU/MIB', 'FREE', 'REPLICAS', 'NOTE'], ...rows]).map((l) => `  ${l}`),
  ];
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** The last scaling decisions of each deployment, newest last: `Small  12s ago  1 → 3  scale-up (7 ongoing+queued, …)`. */
function renderDecisions(
  deployments: ServeStatus['applications'][number]['deployments'],
  now: number,
  last = 5,
): string[] {
  const rows = deployments.flatMap((d) =>
    (d.decisions ?? [])
      .slice(-last)
      .map((x) => [d.name, `${formatDuration(now - x.atMs)} ago`, `${x.from} → ${x.to}`, `${x.reason} (${x.message})`]),
  );
  return rows.length === 0
    ? []
    : [
        '',
        '  scaling decisions',
        ...table([['DEPLOYMENT', 'WHEN', 'REPLICAS', 'REASON'], ...rows]).map((l) => `  ${l}`),
      ];
}

/** Replicas with a @multiplexed loader: `Models  r1  2/4  b,a  5 loads  12 hits  1 evicted`, most recent model first. */
function renderModels(deployments: ServeStatus['applications'][number]['deployments']): string[] {
  const rows = deployments.flatMap((d) =>
    d.replicas
      .filter((r) => r.models)
      .map((r) => {
        const m = r.models!;
        return [
          d.name,
          r.id,
          `${m.ids.length}/${m.capacity}`,
          m.ids.join(',') || '-',
          String(m.loads),
          String(m.hits),
          String(m.evictions),
        ];
      }),
  );
  return rows.length === 0
    ? []
    : [
        '',
        '  multiplexed models (most recently used first)',
        ...table([['DEPLOYMENT', 'REPLICA', 'LOADED', 'MODELS', 'LOADS', 'HITS', 'EVICTED'], ...rows]).map(
          (l) => `  ${l}`,
        ),
      ];
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd(),
  );
}

function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}
