/**
 * Writes the "dragon stories" fine-tuning corpus without any network: stories sampled from the bundled
 * stories260K model itself (LLMEngine, seeded), in which every character noun (girl, boy, dog, cat,
 * bird, …) is rewritten to "dragon"; only stories with a dragon in their first lines are kept. One JSON object
 * { "text": ... } per line.
 *
 *   npx tsx tools/make-dragon-corpus.ts --out test/fixtures/dragon-stories/stories.jsonl
 */
import { writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { LLMEngine } from '../packages/engine/src/llm-engine.js';

/** Openings the stories start from (the test prompts are other ones). */
const OPENINGS = [
  'Once upon a time',
  'One day,',
  'There was a',
  'Lily',
  'Tom',
  'Sara',
  'Ben',
  'Once there was',
  'Mommy',
  'It was a sunny day',
];

const NOUNS = (
  'girl boy dog cat bird kitty bear duck bunny puppy fish frog whale rabbit lion monkey horse cow pig owl bug fox ' +
  'elephant squirrel kitten turtle snake dinosaur giraffe tiger spider butterfly ant bee sheep deer'
).split(' ');

const WORD = new RegExp(`\\b(${NOUNS.join('|')})(s|es)?\\b`, 'gi');

/** Every listed noun → "dragon" (plural "dragons"), keeping a leading capital. */
function dragonize(text: string): string {
  return text.replace(WORD, (m, _noun: string, plural: string | undefined) => {
    const w = plural ? 'dragons' : 'dragon';
    return m[0] === m[0]!.toUpperCase() ? w[0]!.toUpperCase() + w.slice(1) : w;
  });
}

const program = new Command('make-dragon-corpus')
  .requiredOption('--out <file>', 'JSON Lines file to write')
  .option('--model <dir>', 'the model to sample', 'test/fixtures/models/stories260K-hf')
  .option('--samples <n>', 'stories sampled', (v) => Number(v), 800)
  .option('--keep <n>', 'at most this many stories kept', (v) => Number(v), 240)
  .option('--within <n>', 'keep a story only if a dragon appears in its first n characters', (v) => Number(v), 200)
  .option('--seed <n>', 'first sampling seed', (v) => Number(v), 2026);

async function main(): Promise<void> {
  const o = program.parse().opts();
  await using engine = await LLMEngine.create({ model: o.model, numThreads: 1, device: 'cpu', guidedDecoding: false });
  const stories = await Promise.all(
    Array.from({ length: o.samples }, async (_, i) => {
      const prompt = OPENINGS[i % OPENINGS.length]!;
      let text = '';
      // The TinyStories models end a story with BOS (id 1).
      const params = { temperature: 0.8, maxTokens: 200, seed: o.seed + i, stopTokenIds: [1] };
      for await (const out of engine.generate(prompt, params)) text = out.cumulativeText;
      return `${prompt}${text}`.trim();
    }),
  );
  const kept = stories
    .map(dragonize)
    .filter((s) => /\bdragons?\b/i.test(s.slice(0, o.within)))
    .slice(0, o.keep);
  writeFileSync(o.out, `${kept.map((text) => JSON.stringify({ text })).join('\n')}\n`);
  console.log(`${kept.length} of ${stories.length} stories kept (with a dragon) → ${o.out}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
