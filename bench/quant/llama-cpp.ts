/**
 * llama.cpp's own figures on a GGUF file, from a llama.cpp build already on the machine (nothing is
 * downloaded or built here): the directory holding `llama-bench` and `llama-batched-bench`, from
 * `--llama-cpp DIR` or the environment variable LLAMA_CPP_BIN.
 *
 * - single-sequence decode: `llama-bench -p 0 -n 32 -r 1 -t <threads> -o json` (its tg32 test: one
 *   sequence, context 0 to 32, after its own warm-up run); avg_ts and model_size are read.
 * - batch-32 decode: `llama-batched-bench -npp 8 -ntg 16 -npl 32 -t <threads>` (32 sequences of an
 *   8-token prompt, then 16 decode steps of 32 tokens each); S_TG t/s of the B = 32 row is read, and
 *   the "load time" llama.cpp itself reports at exit (model load, context creation and its 16-token
 *   warm-up, through the first evaluation, so mmap page faults are counted).
 *
 * Both run as child processes with llama.cpp's defaults otherwise (mmap, f16 KV cache, no flash
 * attention), so they inherit this process's niceness. On an oversubscribed machine llama.cpp at 2+
 * threads can lose 10x or more (its threads meet at a barrier after every graph node): compare on a quiet
 * machine or at --threads 1 (docs/quantized-checkpoints.md).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Thrown when the llama.cpp directory lacks a tool or a tool's output cannot be read. */
export class LlamaCppError extends Error {
  constructor(
    readonly code: 'E_LLAMA_CPP_MISSING' | 'E_LLAMA_CPP_OUTPUT',
    message: string,
  ) {
    super(message);
    this.name = 'LlamaCppError';
  }
}

export const LLAMA_CPP_TOOLS = ['llama-bench', 'llama-batched-bench'] as const;

/** The build/bin directory from the option or LLAMA_CPP_BIN, checked; undefined when neither is given. */
export function llamaCppDir(option: string | undefined): string | undefined {
  const dir = option ?? process.env.LLAMA_CPP_BIN;
  if (!dir) return undefined;
  const missing = LLAMA_CPP_TOOLS.filter((t) => !existsSync(path.join(dir, t)));
  if (missing.length) throw new LlamaCppError('E_LLAMA_CPP_MISSING', `${dir} lacks ${missing.join(', ')}`);
  return path.resolve(dir);
}

async function tool(dir: string, name: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(path.join(dir, name), args, { maxBuffer: 64 * 2 ** 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const tail = (e.stderr ?? '').trim().split('\n').slice(-5).join('\n');
    throw new LlamaCppError('E_LLAMA_CPP_OUTPUT', `${name} ${args.join(' ')} failed: ${e.message}\n${tail}`);
  }
}

export interface LlamaBenchDecode {
  tokS: number;
  /** Bytes of the model's tensors as llama.cpp counts them (llama_model_size). */
  modelBytes: number;
  /** The build llama-bench reports (commit hash). */
  build: string;
}

/** Single-sequence decode tok/s from llama-bench's tg test. */
export async function llamaBenchDecode(
  dir: string,
  file: string,
  threads: number,
  tokens = 32,
  reps = 1,
): Promise<LlamaBenchDecode> {
  const args = ['-m', file, '-p', '0', '-n', String(tokens), '-r', String(reps), '-t', String(threads), '-o', 'json'];
  return parseLlamaBench((await tool(dir, 'llama-bench', args)).stdout, tokens);
}

/** Reads llama-bench's `-o json` stdout: the tg<tokens> row (no prompt). */
export function parseLlamaBench(out: string, tokens: number): LlamaBenchDecode {
  let rows: { avg_ts: number; model_size: number; build_commit: string; n_gen: number; n_prompt: number }[];
  try {
    rows = JSON.parse(out.slice(out.indexOf('['), out.lastIndexOf(']') + 1));
  } catch {
    throw new LlamaCppError('E_LLAMA_CPP_OUTPUT', `llama-bench printed no JSON results:\n${out.slice(-500)}`);
  }
  const tg = rows.find((r) => r.n_gen === tokens && r.n_prompt === 0);
  if (!tg) throw new LlamaCppError('E_LLAMA_CPP_OUTPUT', `llama-bench printed no tg${tokens} row`);
  return { tokS: tg.avg_ts, modelBytes: tg.model_size, build: tg.build_commit };
}

export interface BatchedDecode {
  tokS: number;
  /** llama.cpp's reported load time, seconds. */
  loadS: number;
}

/** Batch-`batch` decode tok/s (S_TG) from llama-batched-bench, with llama.cpp's load time. */
export async function batchedBenchDecode(
  dir: string,
  file: string,
  threads: number,
  batch = 32,
  prompt = 8,
  steps = 16,
): Promise<BatchedDecode> {
  const ctx = batch * (prompt + steps);
  const args = [
    '-m',
    file,
    '-c',
    String(ctx),
    '-b',
    '512',
    '-ub',
    '512',
    '-t',
    String(threads),
    '-tb',
    String(threads),
  ];
  args.push('-npp', String(prompt), '-ntg', String(steps), '-npl', String(batch));
  const { stdout, stderr } = await tool(dir, 'llama-batched-bench', args);
  return parseBatchedBench(`${stdout}\n${stderr}`, prompt, steps, batch);
}

/**
 * Reads llama-batched-bench's table row for (prompt, steps, batch) and the load time llama_perf prints:
 * |    PP |     TG |    B |   N_KV |   T_PP s | S_PP t/s |   T_TG s | S_TG t/s |      T s |    S t/s |
 */
export function parseBatchedBench(out: string, prompt: number, steps: number, batch: number): BatchedDecode {
  const row = out
    .split('\n')
    .map((l) => l.split('|').map((c) => c.trim()))
    .find((c) => c.length >= 11 && c[1] === String(prompt) && c[2] === String(steps) && c[3] === String(batch));
  const load = /load time =\s*([\d.]+) ms/.exec(out);
  if (!row || !load)
    throw new LlamaCppError('E_LLAMA_CPP_OUTPUT', `llama-batched-bench printed no result row:\n${out.slice(-800)}`);
  return { tokS: Number(row[8]), loadS: Number(load[1]) / 1000 };
}
