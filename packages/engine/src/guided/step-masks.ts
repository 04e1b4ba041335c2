/**
 * A scheduled step's guided sequences before it runs: their token masks computed (off the event loop,
 * by the grammar matcher) and the sequences that finished meanwhile (aborted) dropped from the step.
 */
import type { SchedulerOutput } from '../scheduler.js';

/** Computes the masks of the guided sequences that sample in this step; false when all were ready. */
export async function refreshMasks(out: SchedulerOutput): Promise<boolean> {
  const pending: Promise<void>[] = [];
  for (let i = 0; i < out.seqs.length; i++) {
    const seq = out.seqs[i]!;
    if (seq.guided && !seq.guided.mask && seq.numComputedTokens + out.numNewTokens[i]! === seq.numTokens)
      pending.push(seq.guided.refresh());
  }
  if (pending.length === 0) return false;
  await Promise.all(pending);
  return true;
}

/** Removes sequences no longer running (finished meanwhile) from a scheduled step. */
export function dropFinished(out: SchedulerOutput): void {
  for (let i = out.seqs.length - 1; i >= 0; i--) {
    if (out.seqs[i]!.status === 'running') continue;
    out.numBatchedTokens -= out.numNewTokens[i]!;
    out.seqs.splice(i, 1);
    out.numNewTokens.splice(i, 1);
  }
}
