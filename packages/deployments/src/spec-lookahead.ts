/**
 * Proposing ahead (SpeculativePipeline's `lookahead`): while the target verifies a round's k
 * proposals, the draft, in another actor and otherwise idle, already proposes the next round on the
 * guess that the target keeps all k and that its own next token is the draft's. The call continues
 * `base` (the round's tokens plus its k proposals) with k + 1 tokens: the first is the guess, the
 * rest the next round's proposals. When the guess holds, the next round starts at the verification
 * and the draft's time leaves the round's path; when it fails, the reply is dropped and the draft
 * proposes again from the tokens the target kept (SessionDrafter recomputes from the first changed
 * token). Output never depends on it: the target verifies whatever is proposed.
 */
import type { DraftProposalWire } from './draft-model.js';

export interface Ahead {
  /** The tokens the call continues: the verified round's tokens and its proposals. */
  base: readonly number[];
  reply: Promise<DraftProposalWire>;
}

/**
 * The next round's proposals (at most k) from `ahead`, when `tokenIds` (the tokens kept so far) are
 * its base plus the token it guessed; otherwise null. Waits for the reply only when the base matches.
 */
export async function takeAhead(
  ahead: Ahead,
  tokenIds: readonly number[],
  k: number,
): Promise<DraftProposalWire | null> {
  if (tokenIds.length !== ahead.base.length + 1) return null;
  for (let i = ahead.base.length - 1; i >= 0; i--) if (ahead.base[i] !== tokenIds[i]) return null;
  const r = await ahead.reply.catch(() => null);
  if (r === null || r.q !== null || r.tokens.length < 2 || r.tokens[0] !== tokenIds[tokenIds.length - 1]) return null;
  return { tokens: r.tokens.slice(1, 1 + k), q: null, ms: r.ms };
}
