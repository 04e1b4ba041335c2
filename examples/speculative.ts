/**
 * Speculative decoding across two actors: a small draft model proposes k tokens per round, the target
 * verifies them in one forward, and accepted tokens stream back. Output equals the target's alone
 * (token for token when greedy). Each model runs in its own process.
 *
 *   serve run examples/speculative.ts:app
 *   serve run examples/speculative.ts:app target=PATH draft=PATH tokenizer=PATH k=4
 *
 * Defaults: models/flotilla-stories/{target,draft} when both are present, else the test
 * fixtures stories260K (target) and llama2xs-260K (draft) in test/fixtures/models, with tok512.
 *
 * It speaks the OpenAI API (completions and chat, whole or streamed; model name 'speculative', any other name taken as it, as TGI), TGI's
 * /generate and /generate_stream, and llm.proto over gRPC, through LLMFront's code (front-server.ts: the
 * same route handlers as LLMServer); what the pipeline cannot do (n > 1, stop strings, logprobs) is a 400
 * naming the field. It is a GenerationGraph, so an LLMFront can also serve it beside other graphs
 * (examples/llm-front.ts):
 *   curl -s localhost:8000/v1/completions -H 'content-type: application/json' \
 *     -d '{"model":"speculative","prompt":"Once upon a time","max_tokens":32,"temperature":0}'
 * and serve.proto over gRPC; through a handle:
 * `for await (const c of handle.stream.generate({ prompt: 'Once upon a time', params: { temperature: 0, maxTokens: 64 } }))`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deployment } from '@flotilla/core';
import { DraftModel, SpeculativePipeline, TargetModel } from '@flotilla/deployments';

@deployment({ placement: 'process', maxOngoingRequests: 64 })
export class Draft extends DraftModel {}

@deployment({ placement: 'process', maxOngoingRequests: 64 })
export class Target extends TargetModel {}

@deployment({ maxOngoingRequests: 64 })
export class Speculative extends SpeculativePipeline {}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The shipped pair when trained, else the shared real pair. */
export function defaultPair(): { target: string; draft: string; tokenizer?: string } {
  const own = path.join(root, 'models/flotilla-stories');
  if (existsSync(path.join(own, 'target/model.safetensors')) && existsSync(path.join(own, 'draft/model.safetensors'))) {
    return { target: path.join(own, 'target'), draft: path.join(own, 'draft') };
  }
  const shared = process.env.FLOTILLA_MODELS ?? path.join(root, 'test/fixtures/models');
  return {
    target: path.join(shared, 'stories260K/stories260K.bin'),
    draft: path.join(shared, 'llama2xs-260K/llama2xs-260K.bin'),
    tokenizer: path.join(shared, 'stories260K/tok512.bin'),
  };
}

export function app(args: { target?: string; draft?: string; tokenizer?: string; k?: string } = {}) {
  const pair = defaultPair();
  const tokenizer = args.tokenizer ?? pair.tokenizer;
  const common = { numThreads: 1, ...(tokenizer ? { tokenizer } : {}) };
  return Speculative.bind(
    Draft.bind({ model: args.draft ?? pair.draft, ...common }),
    Target.bind({ model: args.target ?? pair.target, ...common }),
    { k: Number(args.k ?? 4) },
  );
}
