/**
 * Verification of one sequence from the target's last k + 1 logit rows: penalties applied per row
 * (each row's context is the tokens before it), then greedy matching or exact rejection sampling with
 * draws that depend only on (seed, position). Shared by the engine's SpecDecoder and the Verifier of
 * the TargetModel deployment, so both give the same tokens.
 */
import type { TokenLogprob } from '../request-output.js';
import type { Sequence } from '../sequence.js';
import { verifyGreedy, verifyProposals, type VerifyResult } from './rejection-sampler.js';
import { applyPenalties, argmax, distribution, logprobOfRow, sampleLogits, uniform } from './sampler.js';

/** Salt of the acceptance draws (independent of the draft's and of the sampling draws). */
const ACCEPT_SALT = 0x27d4eb2f;

export interface RowsProposal {
  tokens: readonly number[];
  /** Draft distributions, or null for a deterministic proposal (n-gram) or a greedy request. */
  q: readonly Float64Array[] | null;
}

/**
 * `seq` holds its k proposals as its last k tokens; rows[j] predicts token numTokens - k + j.
 * Without proposals (k = 0) it samples one token as the native step would.
 */
export function verifyRows(
  seq: Sequence,
  rows: readonly Float32Array[],
  prop: RowsProposal | null,
): VerifyResult & { logprobs: TokenLogprob[] | null } {
  const p = seq.params;
  const k = rows.length - 1;
  const base = seq.numTokens - k; // index of the token row 0 predicts
  const penalised = rows.map((row, j) => {
    if (p.repetitionPenalty === 1 && p.presencePenalty === 0 && p.frequencyPenalty === 0) return row;
    const copy = Float32Array.from(row);
    applyPenalties(copy, p, seq.tokenIds, seq.promptLen, base + j);
    return copy;
  });
  let res: VerifyResult;
  if (k === 0) res = { tokens: [sampleLogits(penalised[0]!, p, seq.seed, base)], numAccepted: 0 };
  else if (p.temperature === 0)
    res = verifyGreedy(
      prop!.tokens,
      penalised.map((row) => argmax(row)),
    );
  else {
    const seed = seq.seed;
    res = verifyProposals(
      prop!.tokens,
      penalised.map((row) => distribution(row, p)),
      prop!.q,
      {
        accept: (i) => uniform((seed ^ ACCEPT_SALT) >>> 0, base + i),
        resample: (i) => uniform(seed, base + i),
      },
    );
  }
  const logprobs =
    p.logprobs === undefined ? null : res.tokens.map((t, j) => logprobOfRow(penalised[j]!, t, p.logprobs!));
  return { ...res, logprobs };
}

/** True when a row of `seq` is decided by the raw argmax alone: greedy, no penalties, no logprobs. */
export function isPlainGreedy(seq: Sequence): boolean {
  const p = seq.params;
  return (
    p.temperature === 0 &&
    p.repetitionPenalty === 1 &&
    p.presencePenalty === 0 &&
    p.frequencyPenalty === 0 &&
    p.logprobs === undefined
  );
}

/**
 * verifyRows() for a plainly greedy sequence (isPlainGreedy) from the rows' argmaxes alone
 * (NativeModel.argmax: ids[j] is row j's first maximum): the same tokens, no logprobs.
 */
export function verifyArgmax(ids: ArrayLike<number>, prop: RowsProposal | null): VerifyResult & { logprobs: null } {
  const res = prop && prop.tokens.length > 0 ? verifyGreedy(prop.tokens, ids) : { tokens: [ids[0]!], numAccepted: 0 };
  return { ...res, logprobs: null };
}
