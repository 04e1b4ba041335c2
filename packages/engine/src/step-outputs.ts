/**
 * What a finished step's sampled tokens do: each live sequence's token is accepted (grammar advanced,
 * detokenized, stop strings checked) and streamed out through the request table, first admissions
 * are timed, and one 'step' event reports the step. A speculative step may append several tokens per
 * sequence.
 */
import type { EngineMetrics } from './engine-metrics.js';
import type { ModelRunner } from './model-runner.js';
import type { NativeStepResult } from './native/native-types.js';
import { logprobOf } from './request-state.js';
import type { RequestTable } from './request-table.js';
import type { Scheduler, SchedulerOutput } from './scheduler.js';
import type { Sequence } from './sequence.js';
import type { SpecStepResult } from './spec-decode/spec-decoder.js';

export class StepOutputs {
  private readonly table: RequestTable;
  private readonly scheduler: Scheduler;
  private readonly metrics: EngineMetrics;
  private readonly runner: ModelRunner;

  constructor(table: RequestTable, scheduler: Scheduler, metrics: EngineMetrics, runner: ModelRunner) {
    this.table = table;
    this.scheduler = scheduler;
    this.metrics = metrics;
    this.runner = runner;
  }

  apply(out: SchedulerOutput, result: NativeStepResult, t0: number): void {
    const now = performance.now();
    this.noteAdmissions(out, t0);
    this.scheduler.update(out, { sampledTokenIds: result.tokens });
    let generated = 0;
    for (let i = 0; i < out.seqs.length; i++) {
      const token = result.tokens[i]!;
      const seq = out.seqs[i]!;
      if (token < 0 || seq.finishReason === 'abort') continue;
      if (seq.guided) this.acceptGuided(seq, token);
      const lp = seq.params.logprobs !== undefined ? logprobOf(result, i, token, seq.params.logprobs) : null;
      if (this.acceptSampled(seq, token, lp, now)) generated++;
    }
    this.metrics.emit({
      type: 'step',
      numSeqs: out.seqs.length,
      numTokens: out.numBatchedTokens,
      numGenerated: generated,
      numPreempted: out.preempted.length,
      durationMs: now - t0,
    });
  }

  /** One sampled token of a live sequence: detokenize, check stop strings, stream it out. False if the request is gone. */
  private acceptSampled(seq: Sequence, token: number, lp: ReturnType<typeof logprobOf> | null, now: number): boolean {
    const sample = this.table.samples.get(seq.seqId);
    const req = this.table.get(seq.requestId);
    if (!sample || !req) return false;
    if (Number.isNaN(sample.firstTokenAt)) sample.firstTokenAt = now;
    const stopString = sample.acceptToken(token);
    if (stopString !== null && !seq.isFinished) {
      this.scheduler.finish(seq, 'stop');
      seq.stopReason = stopString;
    }
    this.table.emit(req, sample, token, lp);
    return true;
  }

  /** apply() for a speculative step: each sequence may append several tokens. */
  applySpeculative(out: SchedulerOutput, spec: SpecStepResult, t0: number): void {
    const now = performance.now();
    this.noteAdmissions(out, t0);
    let generated = 0;
    this.scheduler.updateSpeculative(out, spec.tokenIds, spec.numDraftTokens, (i, j, token) => {
      const seq = out.seqs[i]!;
      if (seq.guided && seq.finishReason !== 'abort') this.acceptGuided(seq, token);
      if (this.acceptSampled(out.seqs[i]!, token, spec.logprobs[i]?.[j] ?? null, now)) generated++;
    });
    // Rolled-back blocks may return at the same block-table index, which the runner's row cache
    // would not notice: rewrite every row next step.
    if (spec.numDraftTokens.some((k) => k > 0)) this.runner.invalidate();
    this.metrics.emit({
      type: 'step',
      numSeqs: out.seqs.length,
      numTokens: out.numBatchedTokens,
      numGenerated: generated,
      numPreempted: out.preempted.length,
      durationMs: now - t0,
    });
  }

  /**
   * Advances a guided sequence's grammar by its sampled token (always one its mask allowed). Should the
   * grammar refuse it anyway, the sequence stops rather than continue outside the grammar.
   */
  private acceptGuided(seq: Sequence, token: number): void {
    if (!seq.guided!.accept(token) && !seq.isFinished) this.scheduler.finish(seq, 'stop');
  }

  private noteAdmissions(out: SchedulerOutput, t0: number): void {
    for (const seq of out.seqs) {
      const sample = this.table.samples.get(seq.seqId);
      if (sample && Number.isNaN(sample.admittedAt)) {
        sample.admittedAt = t0;
        sample.cachedPromptTokens = seq.numCachedTokens;
      }
    }
  }
}
