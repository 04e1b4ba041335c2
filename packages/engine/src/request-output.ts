/**
 * What generate() yields, and the per-request stream that carries it: a queue the step loop pushes to
 * and one consumer pulls from. Outputs pile up only while the consumer is slower than the engine, and
 * then consecutive deltas of one sample merge into one output.
 */
import type { FinishReason } from './sequence.js';

export interface TokenLogprob {
  tokenId: number;
  /** Log-probability under the model's (penalised, untempered) distribution. */
  logprob: number;
  /** The most likely tokens at this position, best first (as many as SamplingParams.logprobs asked). */
  top: Array<{ tokenId: number; logprob: number }>;
}

export interface RequestOutput {
  requestId: string;
  /** Which of the request's n samples this output belongs to. */
  index: number;
  /** Text new since this sample's previous output. */
  text: string;
  /** Token ids new since this sample's previous output. */
  tokenIds: number[];
  /** All of this sample's text so far. */
  cumulativeText: string;
  finished: boolean;
  finishReason: FinishReason | null;
  /** The stop token id or stop string that ended the sample, if one did. */
  stopReason: number | string | null;
  /** Per new token, when SamplingParams.logprobs was set. */
  logprobs?: TokenLogprob[];
  /** On a sample's first output, when SamplingParams.promptLogprobs was set: per prompt token, null for the first. */
  promptLogprobs?: Array<TokenLogprob | null>;
  usage: { promptTokens: number; completionTokens: number };
}

interface Waiter {
  resolve: (r: IteratorResult<RequestOutput>) => void;
  reject: (e: unknown) => void;
}

/** One request's outputs as an async iterable. `onReturn` runs when the consumer stops early. */
export class RequestStream implements AsyncIterableIterator<RequestOutput> {
  readonly requestId: string;
  private readonly queue: RequestOutput[] = [];
  private waiter: Waiter | null = null;
  private ended = false;
  private error: unknown = null;
  private readonly onReturn: () => void;

  constructor(requestId: string, onReturn: () => void) {
    this.requestId = requestId;
    this.onReturn = onReturn;
  }

  push(out: RequestOutput): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: out, done: false });
      return;
    }
    const last = this.queue[this.queue.length - 1];
    if (last && last.index === out.index && !last.finished) mergeInto(last, out);
    else this.queue.push(out);
  }

  /** No more outputs; the consumer drains what is queued, then the iteration ends. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.settle();
  }

  /** Ends with an error, thrown to the consumer after what is queued. */
  fail(err: unknown): void {
    if (this.ended) return;
    this.error = err;
    this.ended = true;
    this.settle();
  }

  next(): Promise<IteratorResult<RequestOutput>> {
    const out = this.queue.shift();
    if (out) return Promise.resolve({ value: out, done: false });
    if (this.ended)
      return this.error ? Promise.reject(this.takeError()) : Promise.resolve({ value: undefined, done: true });
    if (this.waiter)
      return Promise.reject(new Error('RequestStream: next() called while a previous next() is pending'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The consumer stopped (break, return, a thrown error): the request is aborted and its blocks freed. */
  return(): Promise<IteratorResult<RequestOutput>> {
    this.queue.length = 0;
    if (!this.ended) {
      this.ended = true;
      this.onReturn();
    }
    this.settle();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private settle(): void {
    if (!this.waiter || this.queue.length > 0) return;
    const w = this.waiter;
    this.waiter = null;
    if (this.error) w.reject(this.takeError());
    else w.resolve({ value: undefined, done: true });
  }

  private takeError(): unknown {
    const e = this.error;
    this.error = null;
    return e;
  }
}

function mergeInto(a: RequestOutput, b: RequestOutput): void {
  a.text += b.text;
  for (const id of b.tokenIds) a.tokenIds.push(id);
  a.cumulativeText = b.cumulativeText;
  a.finished = b.finished;
  a.finishReason = b.finishReason;
  a.stopReason = b.stopReason;
  if (b.logprobs) (a.logprobs ??= []).push(...b.logprobs);
  if (b.promptLogprobs && !a.promptLogprobs) a.promptLogprobs = b.promptLogprobs;
  a.usage = b.usage;
}
