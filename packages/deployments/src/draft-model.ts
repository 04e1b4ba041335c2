/**
 * DraftModel: the proposing half of speculative decoding as a deployment. For a request's token ids
 * it proposes k tokens with a small model, keeping the request's draft KV between rounds (route all
 * rounds of a request to one replica for that: a replica without the state recomputes it, so routing
 * elsewhere costs time, never exactness). Subclass and decorate it:
 *
 * ```ts
 * @deployment() class Draft extends DraftModel {}
 * ```
 */
import { SessionDrafter, type LoadedModel } from '@flotilla/engine';
import { loadSpecModel, type SpecCall, type SpecModelOptions } from './spec-session.js';

export interface DraftProposalWire {
  tokens: number[];
  /** Draft distributions per proposed token (dense, vocab), null for greedy requests. */
  q: number[][] | null;
  /** Time this call took inside the replica, in milliseconds (the pipeline's round breakdown). */
  ms: number;
}

export class DraftModel {
  readonly #loading: Promise<{ loaded: LoadedModel; drafter: SessionDrafter }>;

  constructor(protected readonly options: SpecModelOptions) {
    this.#loading = loadSpecModel(options).then((loaded) => ({
      loaded,
      drafter: new SessionDrafter(
        loaded.model,
        options.maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens: options.maxNumBatchedTokens } : {},
      ),
    }));
    this.#loading.catch(() => {});
  }

  /** Up to k tokens continuing call.tokenIds. */
  async propose(call: SpecCall, k: number): Promise<DraftProposalWire> {
    const { drafter } = await this.#loading;
    const t0 = performance.now();
    const p = await drafter.propose(call, k);
    const q = p.q ? p.q.map((row) => Array.from(row)) : null;
    return { tokens: p.tokens, q, ms: performance.now() - t0 };
  }

  /** Drops a finished request's draft KV. */
  async release(requestId: string): Promise<void> {
    (await this.#loading).drafter.release(requestId);
  }

  async stats(): Promise<{ sessions: number }> {
    return { sessions: (await this.#loading).drafter.numSessions };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    (await this.#loading.catch(() => null))?.loaded.dispose();
  }
}
