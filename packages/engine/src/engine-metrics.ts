/**
 * The engine's counters and events. stats() reads the counters; a metrics exporter (Prometheus,
 * issue 5) subscribes with onEvent() and builds its histograms from 'step' and 'request-finished'.
 */
import type { Scheduler } from './scheduler.js';
import type { FinishReason } from './sequence.js';

export type EngineEvent =
  | {
      type: 'step';
      /** Sequences and tokens in the step. */
      numSeqs: number;
      numTokens: number;
      /** Tokens sampled (one per sequence whose prompt was complete). */
      numGenerated: number;
      numPreempted: number;
      durationMs: number;
    }
  | {
      type: 'request-finished';
      requestId: string;
      /** Which sample of the request. */
      index: number;
      finishReason: FinishReason;
      promptTokens: number;
      completionTokens: number;
      /** Prompt tokens found in the prefix cache at the sample's first admission. */
      cachedPromptTokens: number;
      /** Arrival to first admission. */
      queueMs: number;
      /** Arrival to first output token (NaN when none came). */
      ttftMs: number;
      /** Arrival to finish. */
      e2eMs: number;
      /** Mean time per output token after the first (NaN with fewer than two). */
      tpotMs: number;
      numPreemptions: number;
    };

export type EngineEventListener = (event: EngineEvent) => void;

/** Steps remembered for the tokens/s figure. */
const WINDOW = 64;

export class EngineMetrics {
  promptTokens = 0;
  generationTokens = 0;
  requestsFinished = 0;
  requestsAborted = 0;
  steps = 0;
  ttftMsSum = 0;
  ttftCount = 0;
  private readonly listeners = new Set<EngineEventListener>();
  /** Ring of (end time ms, tokens generated) of the latest steps. */
  private readonly stepTimes = new Float64Array(WINDOW);
  private readonly stepTokens = new Float64Array(WINDOW);
  private ringAt = 0;

  get numListeners(): number {
    return this.listeners.size;
  }

  onEvent(listener: EngineEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(event: EngineEvent): void {
    if (event.type === 'step') {
      this.steps++;
      this.generationTokens += event.numGenerated;
      this.stepTimes[this.ringAt % WINDOW] = performance.now();
      this.stepTokens[this.ringAt % WINDOW] = event.numGenerated;
      this.ringAt++;
    } else {
      this.requestsFinished++;
      if (event.finishReason === 'abort') this.requestsAborted++;
      if (!Number.isNaN(event.ttftMs)) {
        this.ttftMsSum += event.ttftMs;
        this.ttftCount++;
      }
    }
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A faulty listener must not stop the step loop.
      }
    }
  }

  /** Generated tokens per second over the latest steps (0 when idle for over 10 s). */
  tokensPerSecond(): number {
    const n = Math.min(this.ringAt, WINDOW);
    if (n < 2) return 0;
    const newest = this.stepTimes[(this.ringAt - 1) % WINDOW]!;
    const oldestAt = (this.ringAt - n) % WINDOW;
    const now = performance.now();
    if (now - newest > 10_000) return 0;
    let tokens = 0;
    for (let i = 1; i < n; i++) tokens += this.stepTokens[(oldestAt + i) % WINDOW]!;
    const span = newest - this.stepTimes[oldestAt]!;
    return span > 0 ? (tokens * 1000) / span : 0;
  }
}

export interface EngineStats {
  running: number;
  waiting: number;
  /** Fraction of KV blocks held by sequences, 0..1. */
  kvUsage: number;
  numBlocks: number;
  freeBlocks: number;
  cachedBlocks: number;
  /** Hit tokens / queried tokens at admissions, 0..1. */
  prefixCacheHitRate: number;
  prefixQueryTokens: number;
  prefixHitTokens: number;
  preemptions: number;
  evictions: number;
  promptTokens: number;
  generationTokens: number;
  /** Generated tokens per second over the latest steps. */
  tokensPerSecond: number;
  requestsFinished: number;
  requestsAborted: number;
  steps: number;
  meanTtftMs: number;
  /** Requests in flight (their streams not yet ended). */
  requests: number;
}

export function collectStats(scheduler: Scheduler, m: EngineMetrics, requests: number): EngineStats {
  const bm = scheduler.blockManager;
  return {
    running: scheduler.running.length,
    waiting: scheduler.waiting.length,
    kvUsage: bm.pool.usage,
    numBlocks: bm.pool.numBlocks,
    freeBlocks: bm.pool.numFreeBlocks,
    cachedBlocks: bm.pool.numCachedBlocks,
    prefixCacheHitRate: bm.stats.prefixQueryTokens > 0 ? bm.stats.prefixHitTokens / bm.stats.prefixQueryTokens : 0,
    prefixQueryTokens: bm.stats.prefixQueryTokens,
    prefixHitTokens: bm.stats.prefixHitTokens,
    preemptions: scheduler.numPreemptions,
    evictions: bm.pool.numEvictions,
    promptTokens: m.promptTokens,
    generationTokens: m.generationTokens,
    tokensPerSecond: m.tokensPerSecond(),
    requestsFinished: m.requestsFinished,
    requestsAborted: m.requestsAborted,
    steps: m.steps,
    meanTtftMs: m.ttftCount > 0 ? m.ttftMsSum / m.ttftCount : 0,
    requests,
  };
}
