/**
 * bench/spec-decode's 'actors' section: speculative decoding across actors. A SpeculativePipeline (worker
 * thread) whose DraftModel and TargetModel run in child processes, against the target alone in a child
 * process (an LLMServer, plain generation), both called through handles at one stream and streamed back,
 * on the random 110M pair of the 'random' section. Configurations alternate within each round and every
 * speedup is the median of per-round ratios to that round's plain run (the machine is shared). With
 * modes 'direct' and 'relay', two instances run side by side, one with direct replica links
 * (replica/direct-handles.ts) and one relaying every handle call through the parent
 * (`startServe({ directLinks: false })`); their rounds alternate too.
 *
 * Per speculative configuration, the round's cost broken down (means per round, milliseconds): wall time
 * seen by the pipeline, time inside the draft's propose() and the target's verify(), and the rest —
 * crossings (messaging both ways, and the pipeline's own work between the calls).
 */
import { startServe, type ServeInstance } from '../../packages/core/src/index.js';
import type { SpeculativeChunk } from '../../packages/deployments/src/index.js';
import { median } from './costs.js';
import { pipelineApp, plainApp, type ActorsPair } from './actors-app.js';

export type LinkMode = 'direct' | 'relay';

export interface ActorsOptions extends Omit<ActorsPair, 'k' | 'lookahead'> {
  ks: number[];
  /** Pipelines without and/or with proposing ahead. */
  lookahead: boolean[];
  modes: LinkMode[];
  prompts: string[];
  maxTokens: number;
  rounds: number;
}

export interface ActorsRow {
  mode: LinkMode;
  config: string;
  k: number;
  tokensPerS: number;
  /** Median over rounds of tokens/s over the same round's plain tokens/s (same mode). */
  speedup: number;
  /**
   * The same in tokens per CPU-second of every process taking part (the model replicas' and this one,
   * which holds the pipeline's thread, the routers and the driver): the work, steadier than wall time
   * when other processes take the cores, but blind to waits (crossings) and to work done in parallel.
   */
  cpuSpeedup: number;
  /** Accepted proposals / proposals. */
  acceptanceRate: number | null;
  tokensPerRound: number;
  roundMs: number | null;
  draftMs: number | null;
  verifyMs: number | null;
  crossingsMs: number | null;
  /** Share of rounds whose proposals were made ahead (during the last verification). */
  aheadShare: number | null;
  /** Greedy output equal to plain generation's, token for token. */
  exact: boolean;
}

interface Config {
  name: string;
  /** 0: plain generation. */
  k: number;
  lookahead: boolean;
  app: string;
}

interface Run {
  seconds: number;
  cpuMs: number;
  outputs: number[][];
  rounds: number;
  proposed: number;
  accepted: number;
  roundMs: number;
  draftMs: number;
  verifyMs: number;
  aheadRounds: number;
}

const params = (maxTokens: number) => ({ temperature: 0, maxTokens, ignoreEos: true });

async function runPlain(instance: ServeInstance, prompts: string[], maxTokens: number): Promise<Run> {
  const handle = instance.getHandle('plain');
  const run = emptyRun();
  const t0 = performance.now();
  for (const prompt of prompts) {
    const ids: number[] = [];
    for await (const item of handle.stream.grpcGenerateStream({
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      ignore_eos: true,
    }))
      ids.push(...((item as { token_ids: number[] }).token_ids ?? []));
    run.outputs.push(ids);
    run.rounds += ids.length;
  }
  run.seconds = (performance.now() - t0) / 1000;
  return run;
}

async function runPipeline(instance: ServeInstance, cfg: Config, prompts: string[], maxTokens: number): Promise<Run> {
  const handle = instance.getHandle(cfg.app);
  const k = cfg.k;
  const run = emptyRun();
  const t0 = performance.now();
  for (const prompt of prompts) {
    const ids: number[] = [];
    for await (const c of handle.stream.generate({
      prompt,
      params: params(maxTokens),
    }) as AsyncIterable<SpeculativeChunk>) {
      ids.push(...c.tokenIds);
      run.rounds++;
      // The last round proposes fewer than k when maxTokens leaves less room; it is counted as proposed.
      run.proposed += Math.max(0, Math.min(k, maxTokens - (ids.length - c.tokenIds.length) - 1));
      run.accepted += c.accepted;
      run.roundMs += c.timing.roundMs;
      run.draftMs += c.timing.draftMs;
      run.verifyMs += c.timing.verifyMs;
      if (c.timing.ahead) run.aheadRounds++;
    }
    run.outputs.push(ids);
  }
  run.seconds = (performance.now() - t0) / 1000;
  return run;
}

function emptyRun(): Run {
  return {
    seconds: 0,
    cpuMs: 0,
    outputs: [],
    rounds: 0,
    proposed: 0,
    accepted: 0,
    roundMs: 0,
    draftMs: 0,
    verifyMs: 0,
    aheadRounds: 0,
  };
}

function configs(o: ActorsOptions): Config[] {
  return [
    { name: 'plain', k: 0, lookahead: false, app: 'plain' },
    ...o.ks.flatMap((k) =>
      o.lookahead.map((lookahead) => ({
        name: `pipeline k=${k}${lookahead ? ' ahead' : ''}`,
        k,
        lookahead,
        app: `spec-k${k}${lookahead ? '-ahead' : ''}`,
      })),
    ),
  ];
}

async function start(o: ActorsOptions, mode: LinkMode): Promise<ServeInstance> {
  const pipelines = configs(o).filter((c) => c.k > 0);
  const instance = await startServe({
    applications: [
      { name: 'plain', routePrefix: '/plain', app: plainApp({ ...o, k: 0, lookahead: false }) },
      ...pipelines.map((c) => ({
        name: c.app,
        routePrefix: `/${c.app}`,
        app: pipelineApp({ ...o, k: c.k, lookahead: c.lookahead }),
      })),
    ],
    checkpoint: false,
    directLinks: mode === 'direct',
  });
  // Each pipeline links to its draft and its target.
  if (mode === 'direct')
    while (instance.linkStats().links < 2 * pipelines.length) await new Promise((r) => setTimeout(r, 20));
  return instance;
}

export async function runActors(o: ActorsOptions): Promise<ActorsRow[]> {
  const instances = new Map<LinkMode, ServeInstance>();
  try {
    for (const mode of o.modes) instances.set(mode, await start(o, mode));
    const all = configs(o);
    const exec = async (inst: ServeInstance, c: Config, prompts: string[], n: number) => {
      const cpu0 = await cpuOf(inst, c);
      const run = c.k === 0 ? await runPlain(inst, prompts, n) : await runPipeline(inst, c, prompts, n);
      run.cpuMs = (await cpuOf(inst, c)) - cpu0;
      return run;
    };
    for (const inst of instances.values()) for (const c of all) await exec(inst, c, o.prompts.slice(0, 1), 8); // warm-up
    const runs = new Map<string, Run[]>();
    for (let r = 0; r < o.rounds; r++)
      for (const [mode, inst] of instances)
        for (const c of all) {
          const key = `${mode}/${c.name}`;
          runs.set(key, [...(runs.get(key) ?? []), await exec(inst, c, o.prompts, o.maxTokens)]);
        }
    const rows: ActorsRow[] = [];
    for (const mode of instances.keys()) {
      const plain = runs.get(`${mode}/plain`)!;
      for (const c of all) rows.push(row(mode, c, runs.get(`${mode}/${c.name}`)!, plain));
    }
    return rows;
  } finally {
    for (const inst of instances.values()) await inst.shutdown();
  }
}

/** CPU ms so far of the processes a configuration runs in: its model replicas and this process. */
async function cpuOf(inst: ServeInstance, c: Config): Promise<number> {
  const own = process.cpuUsage();
  const names = c.k === 0 ? ['ActorsPlain'] : ['ActorsDraft', 'ActorsTarget'];
  const replicas = await Promise.all(names.map((d) => inst.getHandle(c.app, d).cpuMs() as Promise<number>));
  return (own.user + own.system) / 1000 + replicas.reduce((a, b) => a + b, 0);
}

function row(mode: LinkMode, c: Config, rs: Run[], plain: Run[]): ActorsRow {
  const tokens = (x: Run) => x.outputs.reduce((a, o) => a + o.length, 0);
  const rate = (x: Run) => tokens(x) / x.seconds;
  const sum = (f: (x: Run) => number) => rs.reduce((a, x) => a + f(x), 0);
  const rounds = sum((x) => x.rounds);
  const perRound = (f: (x: Run) => number) => (c.k === 0 ? null : sum(f) / rounds);
  const roundMs = perRound((x) => x.roundMs);
  const draftMs = perRound((x) => x.draftMs);
  const verifyMs = perRound((x) => x.verifyMs);
  const proposed = sum((x) => x.proposed);
  return {
    mode,
    config: c.name,
    k: c.k,
    tokensPerS: median(rs.map(rate)),
    speedup: median(rs.map((x, i) => rate(x) / rate(plain[i]!))),
    cpuSpeedup: median(rs.map((x, i) => tokens(x) / x.cpuMs / (tokens(plain[i]!) / plain[i]!.cpuMs))),
    acceptanceRate: c.k === 0 || proposed === 0 ? null : sum((x) => x.accepted) / proposed,
    tokensPerRound: sum(tokens) / rounds,
    roundMs,
    draftMs,
    verifyMs,
    crossingsMs: roundMs === null ? null : roundMs - draftMs! - verifyMs!,
    aheadShare: c.k === 0 ? null : sum((x) => x.aheadRounds) / rounds,
    exact: rs.every((x, i) => JSON.stringify(x.outputs) === JSON.stringify(plain[i]!.outputs)),
  };
}

export function printActors(rows: ActorsRow[]): void {
  const f = (x: number | null, d = 2) => (x === null ? '-' : x.toFixed(d));
  console.log(
    'mode    config              tok/s  speedup  cpu-speedup  accept  tok/round  ahead  round ms  draft ms  verify ms  crossings ms  exact',
  );
  for (const r of rows)
    console.log(
      `${r.mode.padEnd(8)}${r.config.padEnd(18)}${f(r.tokensPerS, 1).padStart(7)}  ${f(r.speedup).padStart(7)}  ${f(r.cpuSpeedup).padStart(11)}  ${f(r.acceptanceRate).padStart(6)}  ${f(r.tokensPerRound).padStart(9)}  ${f(r.aheadShare).padStart(5)}  ${f(r.roundMs).padStart(8)}  ${f(r.draftMs).padStart(8)}  ${f(r.verifyMs).padStart(9)}  ${f(r.crossingsMs).padStart(12)}  ${r.exact}`,
    );
}
