/**
 * The engine's live requests (by id) and their samples (by sequence id): where a sample's outputs go
 * (its stream, or the prefill waiter of a prefill() request) and the two ways a request leaves the
 * table — retired once every sample sent its final output (one request-finished event per sample),
 * or failed with an error (samples aborted and their blocks freed, the stream and any waiter rejected).
 */
import type { EngineMetrics } from './engine-metrics.js';
import type { RequestOutput, TokenLogprob } from './request-output.js';
import type { RequestState, SampleState } from './request-state.js';
import type { Scheduler } from './scheduler.js';

/** Where a prefill() request's outputs go instead of its stream (kv-transfer/handoff-requests.ts settlePrefill). */
export type PrefillSettler = (req: RequestState, sample: SampleState, token: number, out: RequestOutput) => void;

export class RequestTable {
  readonly requests = new Map<string, RequestState>();
  readonly samples = new Map<number, SampleState>();
  private readonly scheduler: Scheduler;
  private readonly metrics: EngineMetrics;
  private readonly settlePrefill: PrefillSettler;

  constructor(scheduler: Scheduler, metrics: EngineMetrics, settlePrefill: PrefillSettler) {
    this.scheduler = scheduler;
    this.metrics = metrics;
    this.settlePrefill = settlePrefill;
  }

  get size(): number {
    return this.requests.size;
  }

  has(requestId: string): boolean {
    return this.requests.has(requestId);
  }

  get(requestId: string): RequestState | undefined {
    return this.requests.get(requestId);
  }

  /** Whether `req` is still the live request of its id (not ended meanwhile). */
  isLive(req: RequestState): boolean {
    return this.requests.get(req.requestId) === req;
  }

  /** Registers a request and its samples. */
  add(req: RequestState): void {
    this.requests.set(req.requestId, req);
    for (const s of req.samples) this.samples.set(s.seq.seqId, s);
  }

  /** Calls onAbort when `signal` aborts (on the next microtask if it already has); detached when the request ends. */
  attachSignal(req: RequestState, signal: AbortSignal, onAbort: () => void): void {
    if (signal.aborted) {
      queueMicrotask(onAbort);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    req.detachSignal = () => signal.removeEventListener('abort', onAbort);
  }

  /** The output for what changed in a sample (`token` new, or -1 for none), sent where the request's outputs go. */
  emit(req: RequestState, sample: SampleState, token: number, lp: TokenLogprob | null): void {
    const out = sample.output(req.requestId, token, lp);
    if (req.handoff) {
      this.settlePrefill(req, sample, token, out);
      return;
    }
    req.stream.push(out);
    if (out.finished) this.retireSample(req, sample);
  }

  /** Forgets a sample whose final output went out (a request-finished event); the request retires with its last. */
  retireSample(req: RequestState, sample: SampleState): void {
    const seq = sample.seq;
    this.dropSample(sample);
    const end = performance.now();
    const ttft = sample.firstTokenAt - req.arrivalTime;
    this.metrics.emit({
      type: 'request-finished',
      requestId: req.requestId,
      index: seq.index,
      finishReason: seq.finishReason ?? 'abort',
      promptTokens: seq.promptLen,
      completionTokens: seq.numOutputTokens,
      cachedPromptTokens: sample.cachedPromptTokens,
      queueMs: sample.admittedAt - req.arrivalTime,
      ttftMs: ttft,
      e2eMs: end - req.arrivalTime,
      tpotMs: seq.numOutputTokens > 1 ? (end - sample.firstTokenAt) / (seq.numOutputTokens - 1) : NaN,
      numPreemptions: seq.numPreemptions,
    });
    req.numRetired++;
    if (req.isDone) this.retireRequest(req);
  }

  /** Forgets a sample (and its grammar matcher) without an event: retired, failed or handed off. */
  dropSample(sample: SampleState): void {
    const seq = sample.seq;
    seq.guided?.dispose();
    seq.guided = null;
    this.samples.delete(seq.seqId);
  }

  /** Ends a request whose samples are all done: its signal hook, adapter lease and stream. */
  retireRequest(req: RequestState): void {
    if (!this.isLive(req)) return;
    this.requests.delete(req.requestId);
    this.release(req);
    req.stream.end();
  }

  /** Ends a request with `err`: its unfinished samples abort (blocks freed), its stream and prefill waiter reject. */
  fail(req: RequestState, err: Error): void {
    for (const sample of req.samples) {
      if (!sample.seq.isFinished) this.scheduler.finish(sample.seq, 'abort');
      this.dropSample(sample);
    }
    this.requests.delete(req.requestId);
    this.release(req);
    req.stream.fail(err);
    req.handoff?.reject(err);
  }

  /** fail() for every live request, each with the error `errorOf` returns. */
  failAll(errorOf: () => Error): void {
    for (const req of [...this.requests.values()]) this.fail(req, errorOf());
  }

  private release(req: RequestState): void {
    req.detachSignal?.();
    req.detachSignal = null;
    req.releaseAdapter?.();
    req.releaseAdapter = null;
  }
}
