/**
 * Exact speculative verification as pure functions over plain arrays (Leviathan et al. 2023, Chen
 * et al. 2023). Given k proposed tokens x_1..x_k, drawn from draft distributions q_1..q_k, and the
 * target's distributions p_1..p_{k+1} at the same positions: accept x_i with probability
 * min(1, p_i(x_i) / q_i(x_i)); at the first rejection emit a token from norm(max(0, p_i − q_i)) and
 * stop; when all k are accepted emit a bonus token from p_{k+1}. Every emitted token is then
 * distributed exactly as p, whatever q was. Greedy decoding is the special case where p and q are
 * one-hot: accept iff the target's argmax equals the proposal, else emit the argmax.
 */

/** Where a verification gets its uniforms in [0, 1): `accept(i)` for the test of x_{i+1}, `resample(i)` for the token emitted at row i. */
export interface VerifyDraws {
  accept(i: number): number;
  resample(i: number): number;
}

export interface VerifyResult {
  /** Tokens to append: the accepted proposals, then one corrected or bonus token (length numAccepted + 1). */
  tokens: number[];
  numAccepted: number;
}

/**
 * Rejection sampling. `p` holds k+1 target distributions, `q` k draft distributions, or null for a
 * deterministic proposer (n-gram lookup: q is one-hot at x_i, so x_i is accepted with probability
 * p_i(x_i) and the residual is p_i without x_i).
 */
export function verifyProposals(
  proposals: ArrayLike<number>,
  p: readonly ArrayLike<number>[],
  q: readonly ArrayLike<number>[] | null,
  draws: VerifyDraws,
): VerifyResult {
  const k = proposals.length;
  if (p.length !== k + 1)
    throw new Error(`assertion: ${k} proposals need ${k + 1} target distributions, got ${p.length}`);
  const tokens: number[] = [];
  for (let i = 0; i < k; i++) {
    const x = proposals[i]!;
    const px = p[i]![x]!;
    const qx = q ? q[i]![x]! : 1;
    // q(x) = 0 cannot happen for a token drawn from q; treat it as certain acceptance only if p(x) > 0.
    const ratio = qx > 0 ? px / qx : px > 0 ? 1 : 0;
    if (draws.accept(i) < ratio) {
      tokens.push(x);
      continue;
    }
    tokens.push(drawResidual(p[i]!, q ? q[i]! : null, x, draws.resample(i)));
    return { tokens, numAccepted: i };
  }
  tokens.push(drawFrom(p[k]!, draws.resample(k)));
  return { tokens, numAccepted: k };
}

/** Greedy verification: `targetArgmax` holds the target's choice at each of the k+1 rows. */
export function verifyGreedy(proposals: ArrayLike<number>, targetArgmax: ArrayLike<number>): VerifyResult {
  const k = proposals.length;
  const tokens: number[] = [];
  for (let i = 0; i < k; i++) {
    tokens.push(targetArgmax[i]!);
    if (targetArgmax[i] !== proposals[i]) return { tokens, numAccepted: i };
  }
  tokens.push(targetArgmax[k]!);
  return { tokens, numAccepted: k };
}

/** A draw from norm(max(0, p − q)); q null means one-hot at `rejected`. Falls back to p where the residual has no mass. */
export function drawResidual(p: ArrayLike<number>, q: ArrayLike<number> | null, rejected: number, u: number): number {
  let total = 0;
  for (let i = 0; i < p.length; i++) total += residualAt(p, q, rejected, i);
  if (!(total > 0)) return drawFrom(p, u);
  const target = u * total;
  let cum = 0;
  let last = -1;
  for (let i = 0; i < p.length; i++) {
    const r = residualAt(p, q, rejected, i);
    if (r <= 0) continue;
    cum += r;
    last = i;
    if (cum > target) return i;
  }
  return last;
}

function residualAt(p: ArrayLike<number>, q: ArrayLike<number> | null, rejected: number, i: number): number {
  const qi = q ? q[i]! : i === rejected ? 1 : 0;
  return Math.max(0, p[i]! - qi);
}

/** A draw from a (possibly unnormalised) distribution by walking it in index order. */
export function drawFrom(p: ArrayLike<number>, u: number): number {
  let total = 0;
  for (let i = 0; i < p.length; i++) total += p[i]!;
  const target = u * total;
  let cum = 0;
  let last = 0;
  for (let i = 0; i < p.length; i++) {
    if (!(p[i]! > 0)) continue;
    cum += p[i]!;
    last = i;
    if (cum > target) return i;
  }
  return last;
}
