/**
 * The default example (`npm start`): the LLM server (examples/llm-server.ts) on the best model at hand,
 * with no arguments and no network:
 *
 *   1. models/flotilla-stories/target, the project's own story model, once it has been trained;
 *   2. else test/fixtures/models/stories260K (llama2.c's 260K-parameter story model, the tests' fixture);
 *   3. else a small random-weight model, announced as such at start and in /v1/models.
 *
 * Try it:
 *   curl -s localhost:8000/v1/models
 *   curl -s localhost:8000/v1/completions -H 'content-type: application/json' -d '{"prompt":"Once upon a time","max_tokens":48}'
 *   curl -sN localhost:8000/generate_stream -H 'content-type: application/json' -d '{"inputs":"Lily","parameters":{"max_new_tokens":20}}'
 *
 * Pass the same arguments as examples/llm-server.ts to override (`npm start -- model=PATH`).
 * Speculative decoding with the bundled draft is one argument away and off by default, because on a CPU it
 * pays for greedy requests at one stream but slows sampled ones and batches (README, bench:spec-decode):
 *   npm start -- speculative_model=models/flotilla-stories/draft speculative_disable_by_batch_size=1
 * The non-LLM pipeline that used to be the default is examples/pipeline.ts.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LLM, llmOptions } from './llm-server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A loadable model inside `dir` (a Hugging Face directory, a .gguf or a llama2.c .bin), else undefined. */
function modelIn(dir: string): string | undefined {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return undefined;
  const files = readdirSync(dir);
  if (files.includes('config.json') && files.some((f) => f.endsWith('.safetensors'))) return dir;
  const pick =
    files.find((f) => f.endsWith('.bin') && !/^tok|tokenizer/.test(f)) ?? files.find((f) => f.endsWith('.gguf'));
  return pick ? path.join(dir, pick) : undefined;
}

const SHIPPED = path.join(root, 'models/flotilla-stories/target');

export function defaultModel(): string | undefined {
  return modelIn(SHIPPED) ?? modelIn(path.join(root, 'test/fixtures/models/stories260K'));
}

export const app = (args: Record<string, string>) => {
  const model = args.model ?? defaultModel();
  // The shipped model's folder is called 'target'; clients should see the model's own name.
  const name = model === SHIPPED && !args.served_name ? { served_name: 'flotilla-stories' } : {};
  return LLM.bind(llmOptions({ ...args, ...name, ...(model ? { model } : {}) }));
};
