/**
 * The engine's bookkeeping for one request: its samples (a Sequence each, with the sample's
 * detokenizer and stop-string state and timings), its output stream and its abort-signal hook.
 */
import { IncrementalDetokenizer, type DetokenizerTokenizer } from './detokenizer.js';
import type { PrefillWaiter } from './kv-transfer/kv-handoff.js';
import type { NativeStepResult } from './native/native-types.js';
import type { RequestOutput, RequestStream, TokenLogprob } from './request-output.js';
import type { Sequence } from './sequence.js';
import { StopChecker } from './stop-checker.js';

export class SampleState {
  readonly seq: Sequence;
  readonly detokenizer: IncrementalDetokenizer;
  readonly stop: StopChecker;
  admittedAt = NaN;
  firstTokenAt = NaN;
  cachedPromptTokens = 0;
  /** Computed prompt logprobs waiting to go out with the sample's next (first) output. */
  promptLogprobs: Array<TokenLogprob | null> | null = null;

  constructor(seq: Sequence, tokenizer: DetokenizerTokenizer) {
    this.seq = seq;
    this.detokenizer = new IncrementalDetokenizer(tokenizer, seq.tokenIds[seq.promptLen - 1]!);
    this.stop = new StopChecker(seq.params.stop, seq.params.includeStopStrInOutput);
  }

  /**
   * Takes the token the step just appended (the sequence may already be finished by it) and returns
   * the stop string it completed, if any. The stop token's own text is left out of the output.
   */
  acceptToken(tokenId: number): string | null {
    const seq = this.seq;
    let text = this.detokenizer.push(tokenId);
    if (seq.finishReason === 'stop' && seq.stopReason === tokenId) text = '';
    else if (seq.isFinished) text += this.detokenizer.flush();
    return this.stop.append(text, seq.numOutputTokens >= seq.params.minTokens);
  }

  /** The output for what changed: `tokenId` new (or -1 for none), final when the sequence is finished. */
  output(requestId: string, tokenId: number, logprob: TokenLogprob | null): RequestOutput {
    const seq = this.seq;
    const final = seq.isFinished;
    const out: RequestOutput = {
      requestId,
      index: seq.index,
      text: this.stop.takeDelta(final),
      tokenIds: tokenId >= 0 ? [tokenId] : [],
      cumulativeText: final ? this.stop.text : this.stop.text.slice(0, this.stop.emittedLength),
      finished: final,
      finishReason: seq.finishReason,
      stopReason: seq.stopReason,
      usage: { promptTokens: seq.promptLen, completionTokens: seq.numOutputTokens },
    };
    if (seq.params.logprobs !== undefined) out.logprobs = logprob ? [logprob] : [];
    if (this.promptLogprobs) {
      out.promptLogprobs = this.promptLogprobs;
      this.promptLogprobs = null;
    }
    return out;
  }
}

export class RequestState {
  readonly requestId: string;
  readonly samples: SampleState[];
  readonly stream: RequestStream;
  readonly arrivalTime: number;
  /** Removes the abort-signal listener; null once done. */
  detachSignal: (() => void) | null = null;
  /** Samples whose final output went out. */
  numRetired = 0;
  /** Set for a prefill() request: its outputs settle this instead of going to the stream. */
  handoff: PrefillWaiter | null = null;

  constructor(requestId: string, samples: SampleState[], stream: RequestStream, arrivalTime: number) {
    this.requestId = requestId;
    this.samples = samples;
    this.stream = stream;
    this.arrivalTime = arrivalTime;
  }

  /** Every sample has sent its final output. */
  get isDone(): boolean {
    return this.numRetired === this.samples.length;
  }
}

/** Logprob record of row `s` of a step result. */
export function logprobOf(result: NativeStepResult, s: number, tokenId: number, numTop: number): TokenLogprob {
  const top: TokenLogprob['top'] = [];
  const k = Math.min(numTop, result.topK);
  for (let j = 0; j < k; j++) {
    top.push({ tokenId: result.topIds[s * result.topK + j]!, logprob: result.topLogprobs[s * result.topK + j]! });
  }
  return { tokenId, logprob: result.logprobs[s]!, top };
}
