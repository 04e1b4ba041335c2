/**
 * Prefill/decode disaggregation under mixed load (issue 24, item 5): long prompts arrive while many
 * streams decode. Two configurations of the same graph (bench/pd/pd-apps.ts), run one after the other
 * in one run, same total threads:
 *   single — every request whole on one decode replica with all threads (prefill and decode share steps);
 *   pd     — prompts on a PrefillServer (half the threads), KV moved, decoding on a DecodeServer (the rest).
 * Measured at the client (a handle in this process): ITL p50/p99 of the background streams while the
 * long prompts arrive, TTFT p50/p99 of the long prompts, and for PD the KV bytes, the prefill (with
 * export) and transfer time per prompt token and the time from handoff to the second token
 * (PdRouter's counters).
 *
 *   npx tsx bench/pd/run.ts                    # 15M-shape random model, 6 streams, 6 prompts of 700 tokens
 *   npx tsx bench/pd/run.ts --quick            # fewer, shorter
 * Options: --streams N --long N --long-tokens N --interval-ms N --threads N (default 2) --rounds N
 *   --modes single,pd (default both)
 * Writes bench/results/pd-<timestamp>.json.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServe } from '@flotilla/core';
import { makeRandomModel, MODEL_PRESETS } from '../../packages/engine/src/model-loader/index.js';
import { benchApp } from './pd-apps.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    streams: { type: 'string' },
    long: { type: 'string' },
    'long-tokens': { type: 'string' },
    'interval-ms': { type: 'string' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '1' },
    modes: { type: 'string', default: 'single,pd' },
  },
});
const quick = args.quick === true;
const streams = Number(args.streams ?? (quick ? 4 : 6));
const longCount = Number(args.long ?? (quick ? 3 : 6));
const longTokens = Number(args['long-tokens'] ?? (quick ? 400 : 700));
const intervalMs = Number(args['interval-ms'] ?? 400);
const threads = Number(args.threads);
const rounds = Number(args.rounds);
const modes = String(args.modes).split(',') as Array<'single' | 'pd'>;

const modelDir = path.join(os.tmpdir(), 'flotilla-bench-pd-15m');
const modelConfig = { ...MODEL_PRESETS['15m'], maxSeqLen: 1024 };
const model = existsSync(path.join(modelDir, 'model.bin'))
  ? path.join(modelDir, 'model.bin')
  : await makeRandomModel(modelConfig, { format: 'llama2c', dir: modelDir, seed: 1 });
const tokenizer = path.join(modelDir, 'tokenizer.bin');

let seed = 7;
const rand = () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32;
};
const tokens = (n: number) => Array.from({ length: n }, () => 3 + Math.floor(rand() * (modelConfig.vocabSize - 3)));

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

interface Round {
  itl: number[];
  ttft: number[];
  pdStats: unknown;
}

async function runMode(mode: 'pd' | 'single'): Promise<Round> {
  const instance = await startServe({
    applications: [{ name: 'pd', app: benchApp({ model, tokenizer, kvCacheBytes: 256 << 20, mode, threads }) }],
    checkpoint: false,
    prestartWorkers: false,
  });
  try {
    const h = instance.getHandle('pd');
    // warm-up: one request through each path
    for await (const _ of h.stream.generate({
      requestId: `warm-${mode}`,
      tokenIds: tokens(64),
      params: { maxTokens: 4, temperature: 0 },
    }));
    let window: { start: number; end: number } | null = null;
    const gaps: Array<{ at: number; gap: number }> = [];
    let started = 0;
    let allStarted: () => void = () => {};
    const startedAll = new Promise<void>((r) => {
      allStarted = r;
    });
    let stop = false;
    const background = Array.from({ length: streams }, async (_, i) => {
      let last = 0;
      let n = 0;
      const ac = new AbortController();
      const it = h.options({ signal: ac.signal }).stream.generate({
        requestId: `bg-${mode}-${i}`,
        tokenIds: tokens(16),
        params: { maxTokens: 900, temperature: 0, ignoreEos: true },
      });
      for await (const d of it as AsyncIterable<{ tokenIds: number[] }>) {
        const now = performance.now();
        if (n++ === 0 && ++started === streams) allStarted();
        else if (last > 0) gaps.push({ at: now, gap: (now - last) / Math.max(1, d.tokenIds.length) });
        last = now;
        if (stop) {
          ac.abort();
          break;
        }
      }
    });
    await startedAll;
    await new Promise((r) => setTimeout(r, 300));
    const ttft: number[] = [];
    const t0 = performance.now();
    const longs = Array.from({ length: longCount }, async (_, i) => {
      await new Promise((r) => setTimeout(r, i * intervalMs));
      const sent = performance.now();
      let first = 0;
      for await (const _ of h.stream.generate({
        requestId: `long-${mode}-${i}`,
        tokenIds: tokens(longTokens),
        params: { maxTokens: 8, temperature: 0, ignoreEos: true },
      }))
        if (first === 0) first = performance.now();
      ttft.push(first - sent);
    });
    await Promise.all(longs);
    window = { start: t0, end: performance.now() };
    stop = true;
    await Promise.allSettled(background);
    const itl = gaps.filter((g) => g.at >= window!.start && g.at <= window!.end).map((g) => g.gap);
    const pdStats = await h.pdRouterStats();
    return { itl, ttft, pdStats };
  } finally {
    await instance.shutdown();
  }
}

const results: Record<string, Round[]> = { single: [], pd: [] };
for (let r = 0; r < rounds; r++)
  for (const mode of modes) {
    process.stderr.write(`[bench/pd] round ${r + 1}/${rounds}: ${mode}\n`);
    results[mode]!.push(await runMode(mode));
  }

const row = (mode: string) => {
  const rs = results[mode]!;
  const itl = rs.flatMap((r) => r.itl);
  const ttft = rs.flatMap((r) => r.ttft);
  return {
    mode,
    itlP50: pct(itl, 50),
    itlP99: pct(itl, 99),
    ttftP50: pct(ttft, 50),
    ttftP99: pct(ttft, 99),
    gaps: itl.length,
  };
};
const table = modes.map(row);
console.log(
  `model: random ${modelConfig.dim}d x ${modelConfig.nLayers} layers (15M shape), ${threads} threads in total; ` +
    `${streams} streams decoding, ${longCount} prompts of ${longTokens} tokens every ${intervalMs} ms; ${os.cpus().length} cores`,
);
console.log('mode    ITL p50 ms  ITL p99 ms  TTFT p50 ms  TTFT p99 ms  (ITL samples)');
for (const t of table)
  console.log(
    `${t.mode.padEnd(7)} ${t.itlP50.toFixed(1).padStart(10)} ${t.itlP99.toFixed(1).padStart(11)} ${t.ttftP50.toFixed(0).padStart(12)} ${t.ttftP99.toFixed(0).padStart(12)}  (${t.gaps})`,
  );
if (table.length === 2)
  console.log(
    `ratios single/pd: ITL p99 ${(table[0]!.itlP99 / table[1]!.itlP99).toFixed(2)}x, TTFT p50 ${(table[0]!.ttftP50 / table[1]!.ttftP50).toFixed(2)}x`,
  );
const pd = (results.pd!.at(-1)?.pdStats ?? {}) as Record<string, number>;
if (results.pd!.length > 0)
  console.log(
    `PD: ${pd.transfers} transfers, KV ${pd.kvBytesPerPromptToken?.toFixed(0)} bytes per prompt token; per prompt token: ` +
      `prefill+export ${(pd.prefillMsPerPromptToken! * 1000).toFixed(1)} µs, transfer (handoff at the router to decode accepted) ` +
      `${(pd.transferMsPerPromptToken! * 1000).toFixed(2)} µs; handoff to second token ${pd.resumeMsMean?.toFixed(1)} ms mean; ` +
      `pinned ${pd.pinned}, fallbacks ${pd.fallbacks}`,
  );
if (results.pd!.length > 0) {
  const big = (pd.recentTransfers as unknown as Array<{ tokens: number; bytes: number; ms: number }>).filter(
    (t) => t.tokens === longTokens,
  );
  const ms = big.map((t) => t.ms);
  if (big.length > 0)
    console.log(
      `PD transfers of the ${longTokens}-token prompts (${(big[0]!.bytes / 2 ** 20).toFixed(1)} MiB each): ` +
        `median ${pct(ms, 50).toFixed(0)} ms, min ${Math.min(...ms).toFixed(0)} ms = ` +
        `${(big[0]!.bytes / 2 ** 20 / (Math.min(...ms) / 1000)).toFixed(0)} MiB/s at best`,
    );
}
const outDir = path.join(root, 'bench/results');
mkdirSync(outDir, { recursive: true });
const file = path.join(outDir, `pd-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  file,
  JSON.stringify({ args: { streams, longCount, longTokens, intervalMs, threads, rounds }, table, pd }, null, 2),
);
console.log(`wrote ${path.relative(root, file)}`);
