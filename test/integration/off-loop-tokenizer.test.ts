/**
 * OffLoopTokenizer with its real worker thread and the real tokenizer files (llama2.c tokenizer.bin, Hugging
 * Face tokenizer.json, GGUF vocabulary): the same ids as the engine's tokenizer, this thread free to run while
 * the worker encodes, a worker that disagrees given up for encoding here, a crashed worker replaced.
 */
import { afterEach, expect, it } from 'vitest';
import { readModelSpec, type Tokenizer } from '../../packages/engine/src/index.js';
import { OffLoopTokenizer } from '../../packages/deployments/src/off-loop-tokenizer.js';
import { describeWithModels, models } from '../helpers/models.js';

const STORY = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the sun. ';
const owned: OffLoopTokenizer[] = [];
afterEach(async () => {
  await Promise.all(owned.splice(0).map((t) => t.dispose()));
});

async function offLoop(model: string, tokenizer?: string): Promise<{ local: Tokenizer; off: OffLoopTokenizer }> {
  const local = (await readModelSpec(model, tokenizer !== undefined ? { tokenizerPath: tokenizer } : {})).tokenizer;
  const off = new OffLoopTokenizer(local, { model, tokenizer });
  owned.push(off);
  return { local, off };
}

describeWithModels('OffLoopTokenizer: long texts encoded by a worker thread (real tokenizers)', () => {
  it.each([
    ['llama2.c tokenizer.bin', models.stories260K],
    ['Hugging Face tokenizer.json', models.stories260KHf],
    ['GGUF vocabulary', models.stories260KGguf],
  ])(
    'gives the engine tokenizer’s ids for long texts (%s), short ones stay on this thread',
    async (_, model) => {
      const { local, off } = await offLoop(model);
      const long = `${STORY.repeat(40)}日本語 ünïcödé <0x41> \t end`;
      expect(await off.encode(long)).toEqual(local.encode(long));
      expect(await off.encode(long, { addBos: false })).toEqual(local.encode(long, { addBos: false }));
      expect(await off.encode('Once upon a time')).toEqual(local.encode('Once upon a time'));
      expect(off.counts).toEqual({ offLoop: 2, onLoop: 1 });
    },
    60_000,
  );

  it('leaves this thread free while the worker encodes a long text', async () => {
    const { local, off } = await offLoop(models.stories260K);
    await off.encode(STORY.repeat(20)); // the worker is up
    const text = STORY.repeat(3_000); // ~270 KB: hundreds of milliseconds of tokenizing anywhere
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const ids = await off.encode(text);
    clearInterval(timer);
    // Encoding here would have run no timer at all until it returned; the worker's took many turns of this loop.
    expect(ticks).toBeGreaterThan(5);
    expect(ids).toEqual(local.encode(text));
  }, 60_000);

  it('encodes here when the worker’s tokenizer disagrees with the engine’s', async () => {
    // The engine has stories260K's 512-piece vocabulary; the worker would load Llama 2's 32000 pieces.
    const local = (await readModelSpec(models.stories260K)).tokenizer;
    const off = new OffLoopTokenizer(local, { model: models.stories260K, tokenizer: models.llamaTokenizer });
    owned.push(off);
    const text = STORY.repeat(20);
    expect(await off.encode(text)).toEqual(local.encode(text));
    expect(await off.encode(text)).toEqual(local.encode(text));
    expect(off.counts).toEqual({ offLoop: 0, onLoop: 2 });
  }, 60_000);

  it('rejects after dispose', async () => {
    const { off } = await offLoop(models.stories260K);
    await off.dispose();
    await expect(off.encode(STORY.repeat(20))).rejects.toThrow(/disposed/);
  });
});
