/**
 * `serve bench` against real servers over real sockets: a tiny OpenAI-compatible SSE server (any
 * vendor's shape), the `serve bench` CLI as users run it, and — with the shared models and the LLM
 * server example present — Flotilla's own LLMServer under `serve run`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchCommand } from '../../packages/deployments/src/bench/bench-command.js';
import type { BenchCliOptions } from '../../packages/deployments/src/bench/bench-options.js';
import type { BenchMetrics } from '../../packages/deployments/src/bench/stats.js';
import { startFakeOpenAi, type FakeOpenAi } from '../helpers/fake-openai.js';
import { haveModels, models, repoRoot } from '../helpers/models.js';

const tmp = path.join(repoRoot, '.tmp', `serve-bench-${process.pid}`);

export function benchOptions(over: Partial<BenchCliOptions>): BenchCliOptions {
  return {
    baseUrl: 'http://127.0.0.1:1',
    endpoint: '/v1/completions',
    dataset: 'random',
    numPrompts: 12,
    randomInputLen: 16,
    randomOutputLen: 8,
    randomRangeRatio: 0,
    randomPrefixLen: 0,
    prefixLen: 32,
    suffixLen: 8,
    numPrefixes: 2,
    prefixOutputLen: 8,
    requestRate: 'inf',
    burstiness: 1,
    metricPercentiles: '50,90,99',
    seed: 0,
    progress: false,
    ...over,
  };
}

/** The consistency every run must show, whatever the server. */
export function expectConsistent(m: BenchMetrics, prompts: number, outputPerRequest?: number): void {
  expect(m.completed + m.failed).toBe(prompts);
  expect(m.failed).toBe(0);
  if (outputPerRequest !== undefined) expect(m.totalOutputTokens).toBe(prompts * outputPerRequest);
  expect(m.requestThroughput).toBeCloseTo(m.completed / m.durationS, 6);
  expect(m.outputThroughput).toBeCloseTo(m.totalOutputTokens / m.durationS, 6);
  expect(m.totalTokenThroughput).toBeCloseTo((m.totalInputTokens + m.totalOutputTokens) / m.durationS, 6);
  for (const d of [m.ttftMs, m.tpotMs, m.itlMs, m.e2elMs]) {
    const p = d.percentiles;
    expect(p['50']!).toBeLessThanOrEqual(p['90']!);
    expect(p['90']!).toBeLessThanOrEqual(p['99']!);
    expect(d.mean).toBeGreaterThan(0);
  }
  expect(m.ttftMs.percentiles['99']!).toBeLessThanOrEqual(m.e2elMs.percentiles['99']!);
  expect(m.e2elMs.mean).toBeLessThanOrEqual(m.durationS * 1000);
}

describe('serve bench against an OpenAI-compatible SSE server', () => {
  let server: FakeOpenAi;
  beforeAll(async () => {
    server = await startFakeOpenAi({ tokenDelayMs: 3, firstTokenDelayMs: 10 });
    mkdirSync(tmp, { recursive: true });
  });
  afterAll(async () => {
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('gives consistent numbers at a Poisson rate, with goodput', async () => {
    const out: string[] = [];
    const report = await benchCommand(
      benchOptions({ baseUrl: server.url, requestRate: '40', goodput: ['ttft:60000'] }),
      (t) => out.push(t),
    );
    expect(report.model).toBe('fake-model');
    const m = report.runs[0]!.metrics;
    expectConsistent(m, 12, (12 * 8) / 12);
    // usage carries the server's token counts: 16 words per prompt in this server's "tokenizer".
    expect(m.totalInputTokens).toBe(12 * 16);
    expect(m.itlMs.percentiles['50']!).toBeGreaterThan(1);
    expect(m.goodput).toBeCloseTo(m.requestThroughput, 6);
    expect(out.join('')).toMatch(/Successful requests:\s+12/);
    const sent = server.received.at(-1)!;
    expect(sent).toMatchObject({
      model: 'fake-model',
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(sent).not.toHaveProperty('ignore_eos');
  });

  it('caps concurrency, and sweeps rates into JSON and an SVG plot', async () => {
    server.peakConcurrency = 0;
    const file = path.join(tmp, 'sweep.json');
    const report = await benchCommand(
      benchOptions({
        baseUrl: server.url,
        dataset: 'prefix-repetition',
        requestRate: '20,inf',
        maxConcurrency: 3,
        saveResult: file,
      }),
      () => {},
    );
    expect(server.peakConcurrency).toBeLessThanOrEqual(3);
    expect(report.runs.map((r) => r.requestRate)).toEqual([20, Infinity]);
    for (const run of report.runs) expectConsistent(run.metrics, 12, 8);
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved.runs[1].requestRate).toBe('inf');
    expect(saved.runs[0].metrics.completed).toBe(12);
    const svg = readFileSync(path.join(tmp, 'sweep.svg'), 'utf8');
    expect(svg.match(/<path /g)).toHaveLength(9);
  });

  it('runs as `serve bench` from the command line, on a JSONL prompt file', async () => {
    const prompts = path.join(repoRoot, 'test/fixtures/bench-prompts.jsonl');
    const { code, stdout, stderr } = await runCli([
      'bench',
      '--base-url',
      server.url,
      '--dataset',
      'file',
      '--dataset-path',
      prompts,
      '--num-prompts',
      '6',
      '--request-rate',
      '50',
      '--burstiness',
      '0.5',
      '--no-progress',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/Successful requests:\s+6/);
    expect(stdout).toMatch(/Failed requests:\s+0/);
  });

  it('says what to do when nothing answers', async () => {
    const { code, stderr } = await runCli(['bench', '--base-url', 'http://127.0.0.1:9', '--num-prompts', '1']);
    expect(code).toBe(1);
    expect(stderr).toContain('/v1/models');
    expect(stderr).toContain('next:');
  });
});

const llmExample = path.join(repoRoot, 'examples/llm-server.ts');
const describeLlm = haveModels && existsSync(llmExample) ? describe : describe.skip;

describeLlm('serve bench against `serve run examples/llm-server.ts:app` (stories260K)', () => {
  it("gives consistent numbers against Flotilla's own LLM server", async () => {
    const child = spawn(
      process.execPath,
      [
        path.join(repoRoot, 'bin/serve.js'),
        'run',
        'examples/llm-server.ts:app',
        `model=${models.stories260K}`,
        '--port',
        '0',
        '--no-grpc',
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout!.on('data', (d) => {
      stdout += d;
    });
    try {
      const base = await waitFor(() => /(http:\/\/127\.0\.0\.1:\d+)\/-\/healthz/.exec(stdout)?.[1], 90_000);
      const report = await benchCommand(
        benchOptions({ baseUrl: base, numPrompts: 10, requestRate: '20', ignoreEos: true }),
        () => {},
      );
      expectConsistent(report.runs[0]!.metrics, 10, 8);
    } finally {
      child.kill('SIGTERM');
    }
  }, 180_000);
});

async function waitFor<T>(probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/serve.js'), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
