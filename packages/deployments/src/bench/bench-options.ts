/** `serve bench` options as commander hands them over, and their conversion into the plain inputs of a run. */
import { readFileSync } from 'node:fs';
import { CliError, causeOf } from '@flotilla/core';
import { parseRates } from './arrivals.js';
import { parsePromptFile, prefixRepetitionDataset, randomDataset, type BenchRequest } from './datasets.js';
import { parseGoodput, type Slo } from './goodput.js';
import type { Rng } from './rng.js';

export interface BenchCliOptions {
  /** Server base URL. Default: http://127.0.0.1:8000. */
  baseUrl: string;
  /** Path of the completions route below the base URL. Default: /v1/completions. */
  endpoint: string;
  /** Model name to send. Default: the first of GET /v1/models. */
  model?: string;
  /** Bearer key. Default: $OPENAI_API_KEY, else none. */
  apiKey?: string;
  /** random | prefix-repetition | file. Default: random. */
  dataset: string;
  /** JSONL prompts for --dataset file. */
  datasetPath?: string;
  /** Requests per run. Default: 100. */
  numPrompts: number;
  randomInputLen: number;
  randomOutputLen: number;
  randomRangeRatio: number;
  randomPrefixLen: number;
  prefixLen: number;
  suffixLen: number;
  numPrefixes: number;
  prefixOutputLen: number;
  /** Comma-separated rates, e.g. '1,2,4,inf'. Default: 'inf'. */
  requestRate: string;
  /** Gamma shape of inter-arrival gaps (1 = Poisson). Default: 1. */
  burstiness: number;
  maxConcurrency?: number;
  ignoreEos?: boolean;
  /** e.g. ['ttft:200', 'tpot:50']. Default: none. */
  goodput?: string[];
  /** Default: '50,90,99'. */
  metricPercentiles: string;
  seed: number;
  saveResult?: string;
  plot?: string;
  /** commander's --no-progress. Default: true. */
  progress: boolean;
}

export interface BenchPlan {
  rates: number[];
  slo?: Slo;
  percentiles: number[];
  /** Describes the dataset in the report. */
  dataset: Record<string, unknown>;
  makeRequests(rng: Rng): BenchRequest[];
}

export function planBench(o: BenchCliOptions): BenchPlan {
  const usage = (err: unknown, hint: string): never => {
    throw new CliError(causeOf(err), hint, 2);
  };
  let rates: number[] = [];
  try {
    rates = parseRates(o.requestRate);
  } catch (err) {
    usage(err, 'e.g. --request-rate 1,2,4,inf');
  }
  let slo: Slo | undefined;
  try {
    slo = o.goodput?.length ? parseGoodput(o.goodput) : undefined;
  } catch (err) {
    usage(err, 'e.g. --goodput ttft:200 tpot:50 e2el:5000');
  }
  const percentiles = o.metricPercentiles.split(',').map(Number);
  if (percentiles.some((p) => !(p >= 0 && p <= 100)))
    usage(new Error(`bad --metric-percentiles '${o.metricPercentiles}'`), 'e.g. --metric-percentiles 50,90,99');
  const count = o.numPrompts;
  switch (o.dataset) {
    case 'random': {
      const opts = {
        count,
        inputLen: o.randomInputLen,
        outputLen: o.randomOutputLen,
        rangeRatio: o.randomRangeRatio,
        prefixLen: o.randomPrefixLen,
      };
      return {
        rates,
        slo,
        percentiles,
        dataset: { name: 'random', ...opts },
        makeRequests: (rng) => randomDataset(opts, rng),
      };
    }
    case 'prefix-repetition': {
      const opts = {
        count,
        prefixLen: o.prefixLen,
        suffixLen: o.suffixLen,
        numPrefixes: o.numPrefixes,
        outputLen: o.prefixOutputLen,
      };
      return {
        rates,
        slo,
        percentiles,
        dataset: { name: 'prefix-repetition', ...opts },
        makeRequests: (rng) => prefixRepetitionDataset(opts, rng),
      };
    }
    case 'file': {
      const requests = readPromptFile(o.datasetPath, count, o.randomOutputLen);
      return {
        rates,
        slo,
        percentiles,
        dataset: { name: 'file', path: o.datasetPath, count },
        makeRequests: () => requests,
      };
    }
    default:
      throw new CliError(
        `unknown dataset '${o.dataset}'.`,
        'Use --dataset random, prefix-repetition or file (with --dataset-path FILE.jsonl).',
        2,
      );
  }
}

function readPromptFile(file: string | undefined, count: number, outputLen: number): BenchRequest[] {
  if (!file)
    throw new CliError(
      '--dataset file needs --dataset-path.',
      'Pass a JSONL file: one {"prompt": "...", "max_tokens": N} or one JSON string per line.',
      2,
    );
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${causeOf(err)}`, 'Check the --dataset-path.', 2);
  }
  try {
    return parsePromptFile(text, count, outputLen);
  } catch (err) {
    throw new CliError(
      `${file}: ${causeOf(err)}`,
      'Each line must be a JSON string or an object with a "prompt" string (and optionally "max_tokens").',
      2,
    );
  }
}
