/**
 * Fine-tunes a LoRA adapter for a Hugging Face Llama directory (f32) on a text corpus, on the CPU in
 * TypeScript (tools/lora-train: hand-written forward and backward, Adam, base weights frozen), and writes
 * it as a PEFT adapter directory (adapter_config.json + adapter_model.safetensors) that LLMEngine's
 * loadAdapter() and LLMServer's lora_modules take. Meant for the small bundled models.
 *
 *   npx tsx tools/finetune-lora.ts --base test/fixtures/models/stories260K-hf \
 *     --data test/fixtures/dragon-stories/stories.jsonl --out /tmp/dragon --rank 8 --steps 120
 *
 * Prints the step, the batch loss and the learning rate as it goes, and the held-out loss of the base
 * and of the adapter at the end.
 */
import { Command } from 'commander';
import { ALL_LORA_MODULES } from '../packages/engine/src/model-loader/writers/peft-writer.js';
import { readModelSpec } from '../packages/engine/src/model-loader/read-model-spec.js';
import { loadBaseWeights } from './lora-train/base-weights.js';
import { readCorpus, tokenizeCorpus } from './lora-train/corpus.js';
import { LoraParams } from './lora-train/lora-params.js';
import { evaluate, train } from './lora-train/trainer.js';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${v}`);
  return n;
};
const positive = (v: string) => {
  const n = int(v);
  if (n === 0) throw new Error(`not a positive integer: ${v}`);
  return n;
};

const program = new Command('finetune-lora')
  .description('Train a PEFT LoRA adapter on a text corpus (CPU, small models)')
  .requiredOption('--base <dir>', 'the base model: a Hugging Face Llama directory with f32 weights')
  .requiredOption('--data <file>', 'corpus: JSON Lines {"text": ...} or text with blank-line-separated documents')
  .requiredOption('--out <dir>', 'adapter directory to write (created)')
  .option('--rank <n>', 'LoRA rank r', positive, 8)
  .option('--alpha <x>', 'lora_alpha (default 2 × rank)', (v) => Number(v))
  .option('--modules <list>', 'comma-separated target modules', ALL_LORA_MODULES.join(','))
  .option('--steps <n>', 'optimizer steps', positive, 120)
  .option('--batch <n>', 'documents per step', positive, 4)
  .option('--lr <x>', 'peak learning rate', (v) => Number(v), 8e-3)
  .option('--seq-len <n>', 'tokens kept per document (BOS included)', positive, 96)
  .option('--holdout <n>', 'documents kept out of training, for the final loss', int, 16)
  .option('--seed <n>', 'seed of the initialisation and the batch draws', int, 0)
  .option('--log-every <n>', 'print every n steps', positive, 10);

async function main(): Promise<void> {
  const o = program.parse().opts();
  const [base, spec] = await Promise.all([loadBaseWeights(o.base), readModelSpec(o.base)]);
  const docs = tokenizeCorpus(readCorpus(o.data), spec.tokenizer, o.seqLen);
  const held = docs.slice(docs.length - o.holdout);
  const trainSet = docs.slice(0, docs.length - o.holdout);
  const tokens = trainSet.reduce((n, d) => n + d.length, 0);
  console.log(`${trainSet.length} training documents (${tokens} tokens), ${held.length} held out`);
  const lora = new LoraParams(base, {
    rank: o.rank,
    alpha: o.alpha ?? 2 * o.rank,
    targetModules: String(o.modules).split(','),
    seed: o.seed,
  });
  const started = Date.now();
  const losses = train(base, lora, trainSet, {
    steps: o.steps,
    batch: o.batch,
    lr: o.lr,
    seed: o.seed,
    onStep: ({ step, loss, lr }) => {
      if (step === 1 || step % o.logEvery === 0 || step === o.steps) {
        const s = ((Date.now() - started) / 1000).toFixed(0);
        console.log(`step ${step}/${o.steps}  loss ${loss.toFixed(4)}  lr ${lr.toExponential(2)}  ${s}s`);
      }
    },
  });
  if (held.length > 0) {
    const before = evaluate(base, held);
    const after = evaluate(base, held, lora);
    console.log(`held-out loss: base ${before.toFixed(4)} → adapter ${after.toFixed(4)}`);
  }
  await lora.save(o.out, spec.modelName);
  const first = losses.slice(0, 10);
  const last = losses.slice(-10);
  const mean = (v: number[]) => (v.reduce((a, b) => a + b, 0) / v.length).toFixed(4);
  console.log(`train loss: first 10 steps ${mean(first)}, last 10 steps ${mean(last)}; adapter → ${o.out}`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
