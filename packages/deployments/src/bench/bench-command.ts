/**
 * `serve bench`: a load generator for any OpenAI-compatible server, with vLLM's serving-benchmark
 * methodology (datasets, Poisson/gamma arrivals or a concurrency cap, TTFT/TPOT/ITL/E2EL, throughput,
 * goodput). Each rate of --request-rate is one run; a sweep also prints a summary and can plot it.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { CliError, causeOf } from '@flotilla/core';
import { Progress } from '@flotilla/core';
import { arrivalSchedule } from './arrivals.js';
import { planBench, type BenchCliOptions } from './bench-options.js';
import { firstModel, sendCompletion, type CompletionTarget } from './completion-client.js';
import { renderLatencyPlot } from './plot.js';
import { rateLabel, renderRun, renderSweep, toJson, type BenchReport, type RunReport } from './report.js';
import { createRng } from './rng.js';
import { runRequests } from './runner.js';
import { computeMetrics } from './stats.js';

/** Runs the benchmark; writes the report to `out` as each run ends. Resolves to the whole report. */
export async function benchCommand(
  o: BenchCliOptions,
  out: (text: string) => void = (t) => process.stdout.write(t),
): Promise<BenchReport> {
  const plan = planBench(o);
  const base = o.baseUrl.replace(/\/+$/, '');
  const apiKey = o.apiKey ?? process.env.OPENAI_API_KEY;
  const model =
    o.model ??
    (await firstModel(base, apiKey).catch((err: unknown) => {
      throw new CliError(
        `Cannot ask ${base}/v1/models which model to use (${causeOf(err)}).`,
        'Check --base-url (a running server, e.g. `serve run examples/llm-server.ts:app`), or pass --model NAME.',
      );
    }));
  const target: CompletionTarget = { url: `${base}${o.endpoint}`, model, apiKey, ignoreEos: o.ignoreEos };
  const report: BenchReport = {
    date: new Date().toISOString(),
    endpoint: target.url,
    model,
    dataset: plan.dataset,
    runs: [],
  };
  for (const rate of plan.rates) {
    // Same seed for every rate: the sweep varies only the arrivals' pace, never the prompts.
    const requests = plan.makeRequests(createRng(o.seed));
    const schedule = arrivalSchedule({ count: requests.length, rate, burstiness: o.burstiness }, createRng(o.seed + 1));
    const progress = o.progress ? new Progress({ label: `bench rate ${rateLabel(rate)}` }) : undefined;
    const { results, durationMs } = await runRequests(requests, (r, t0) => sendCompletion(target, r, t0), {
      schedule,
      maxConcurrency: o.maxConcurrency,
      onDone: progress?.callback,
    });
    progress?.finish();
    const run: RunReport = {
      requestRate: rate,
      burstiness: o.burstiness,
      maxConcurrency: o.maxConcurrency,
      numPrompts: requests.length,
      metrics: computeMetrics(results, durationMs, { slo: plan.slo, percentiles: plan.percentiles }),
      errors: [...new Set(results.filter((r) => !r.ok).map((r) => r.error ?? 'unknown error'))].slice(0, 5),
    };
    report.runs.push(run);
    out(renderRun(run));
  }
  if (report.runs.length > 1) out(`\n${renderSweep(report.runs)}`);
  saveOutputs(o, report, out);
  const failedAll = report.runs.every((r) => r.metrics.completed === 0);
  if (failedAll) {
    throw new CliError(
      `every request failed (first error: ${report.runs[0]?.errors[0] ?? 'none'}).`,
      `Check that ${target.url} serves OpenAI completions for model '${model}' (--endpoint, --model, --api-key).`,
    );
  }
  return report;
}

function saveOutputs(o: BenchCliOptions, report: BenchReport, out: (text: string) => void): void {
  if (o.saveResult) {
    writeFileSync(o.saveResult, toJson(report));
    out(`saved ${o.saveResult}\n`);
  }
  // A sweep saved to JSON also gets its plot beside it, unless --plot names another place.
  const plot =
    o.plot ?? (o.saveResult && report.runs.length > 1 ? `${o.saveResult.replace(/\.json$/i, '')}.svg` : undefined);
  if (plot) {
    writeFileSync(plot, renderLatencyPlot(report.runs, `${report.model} at ${report.endpoint}`));
    out(`saved ${plot}\n`);
  }
}

const int =
  (min: number) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}.`);
    return n;
  };
const positive = (v: string): number => {
  const n = Number(v);
  if (!(n > 0)) throw new InvalidArgumentError('expected a number > 0.');
  return n;
};
const ratio = (v: string): number => {
  const n = Number(v);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('expected a number in [0, 1).');
  return n;
};

/** Adds `bench` to the `serve` program. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description("Benchmark an OpenAI-compatible server (ours or another) the way vLLM's serving benchmark does.")
    .option('--base-url <url>', 'server base URL', 'http://127.0.0.1:8000')
    .option('--endpoint <path>', 'completions route below the base URL', '/v1/completions')
    .option('--model <name>', 'model to request (default: the first of GET /v1/models)')
    .option('--api-key <key>', 'bearer key (default: $OPENAI_API_KEY)')
    .option('--dataset <name>', 'random | prefix-repetition | file', 'random')
    .option('--dataset-path <file>', 'JSONL prompts for --dataset file: {"prompt": "...", "max_tokens": N} per line')
    .option('--num-prompts <n>', 'requests per run', int(1), 100)
    .option('--random-input-len <n>', 'random: mean prompt length in words', int(1), 128)
    .option('--random-output-len <n>', 'random: mean max_tokens (also the file default)', int(1), 64)
    .option('--random-range-ratio <r>', 'random: lengths uniform in len*(1-r)..len*(1+r)', ratio, 0)
    .option('--random-prefix-len <n>', 'random: words shared by every prompt', int(0), 0)
    .option('--prefix-len <n>', 'prefix-repetition: words per shared prefix', int(1), 256)
    .option('--suffix-len <n>', 'prefix-repetition: words per unique suffix', int(1), 64)
    .option('--num-prefixes <n>', 'prefix-repetition: distinct prefixes', int(1), 4)
    .option('--prefix-output-len <n>', 'prefix-repetition: max_tokens', int(1), 64)
    .option('--request-rate <rates>', 'requests/s, comma-separated to sweep (inf: all at once)', 'inf')
    .option('--burstiness <k>', 'gamma shape of arrival gaps; 1 = Poisson, <1 burstier', positive, 1)
    .option('--max-concurrency <n>', 'most requests in flight at once', int(1))
    .option('--ignore-eos', 'send ignore_eos (vLLM extension) so every request generates max_tokens')
    .option('--goodput <slo...>', 'SLOs in ms for goodput, e.g. ttft:200 tpot:50 e2el:5000')
    .option('--metric-percentiles <list>', 'percentiles to report', '50,90,99')
    .option('--seed <n>', 'seed of prompts and arrivals', int(0), 0)
    .option('--save-result <file>', 'write the results as JSON (a sweep also writes FILE.svg)')
    .option('--plot <file>', 'write the latency-against-rate SVG here')
    .option('--no-progress', 'no progress bar on stderr')
    .action(async (opts: BenchCliOptions) => {
      await benchCommand(opts);
    });
}
