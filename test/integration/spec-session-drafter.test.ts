/**
 * SessionDrafter keeps a request's draft K/V between calls, and a call may carry tokens that replace
 * the last call's instead of extending them (a pipeline that proposed ahead on a guess that failed, or
 * went back): its proposals must then be those of a drafter that never saw the replaced tokens.
 * stories260K's draft pair (llama2xs-260K), greedy.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadModel, type LoadedModel } from '../../packages/engine/src/model-loader/load-model.js';
import { resolveSamplingParams } from '../../packages/engine/src/sampling-params.js';
import { SessionDrafter } from '../../packages/engine/src/spec-decode/session-models.js';
import { describeWithModels, models } from '../helpers/models.js';

describeWithModels('SessionDrafter with calls that replace tokens', () => {
  // Two copies: drafters on one model share its KV pool, each with its own block accounting.
  let draft: LoadedModel;
  let reference: LoadedModel;
  beforeAll(async () => {
    const load = { tokenizerPath: models.tok512, numThreads: 1, device: 'cpu' as const };
    draft = await loadModel(models.llama2xs260K, load);
    reference = await loadModel(models.llama2xs260K, load);
  });
  afterAll(() => {
    draft?.dispose();
    reference?.dispose();
  });

  const params = resolveSamplingParams(
    { temperature: 0, maxTokens: 64 },
    { maxModelLen: 256, vocabSize: 512, promptLen: 4 },
  );
  const call = (tokenIds: number[]) => ({ requestId: 'r', tokenIds, params, seed: 0 });
  /** What a drafter that sees only `tokenIds` proposes (a new one each time: its pool starts empty). */
  const fresh = async (tokenIds: number[], k: number) =>
    (await new SessionDrafter(reference.model, { maxNumBatchedTokens: 512 }).propose(call(tokenIds), k)).tokens;

  it('proposes as a fresh drafter after a guess that failed, a change in the middle, and a shorter call', async () => {
    const prompt = [1, 403, 30, 11];
    const d = new SessionDrafter(draft.model, { maxNumBatchedTokens: 512 });
    const first = (await d.propose(call(prompt), 4)).tokens;
    expect(first).toHaveLength(4);
    // Ahead: the draft's own proposals plus a guessed token, as a pipeline proposing ahead sends them.
    const ahead = [...prompt, ...first, 7];
    expect((await d.propose(call(ahead), 4)).tokens).toEqual(await fresh(ahead, 4));
    // The guess failed: the target kept two proposals and chose another token.
    const other = first[2] === 99 ? 98 : 99;
    const actual = [...prompt, ...first.slice(0, 2), other];
    expect((await d.propose(call(actual), 4)).tokens).toEqual(await fresh(actual, 4));
    // A token in the middle replaced, same length.
    const middle = [...actual];
    middle[5] = middle[5] === 50 ? 51 : 50;
    expect((await d.propose(call(middle), 4)).tokens).toEqual(await fresh(middle, 4));
    // Shorter than the last call.
    const shorter = middle.slice(0, 5);
    expect((await d.propose(call(shorter), 3)).tokens).toEqual(await fresh(shorter, 3));
    d.release('r');
  });
});
