/**
 * Prefill/decode disaggregation: prompts run on a PrefillServer, whose first token streams at once; the
 * prompt's KV cache moves to the DecodeServer replica with the most free KV, which continues the stream.
 * Long prompts then no longer stall the streams that are decoding (they share no engine step). A failed
 * transfer falls back to prefill on the decode replica. Each server runs in its own process.
 *
 *   serve run examples/pd-disaggregated.ts:app
 *   serve run examples/pd-disaggregated.ts:app model=PATH tokenizer=PATH decoders=2 threads=1
 *
 * Default model: models/flotilla-stories/target when present, else the test fixture stories260K.
 * LLMFront serves the graph as model 'pd' over OpenAI, TGI and llm.proto (gRPC):
 *   curl -s localhost:8000/v1/completions -H 'content-type: application/json' \
 *     -d '{"model":"pd","prompt":"Once upon a time","max_tokens":32,"temperature":0,"stream":true}'
 *   curl -s localhost:8000/generate -H 'content-type: application/json' \
 *     -d '{"inputs":"Once upon a time","parameters":{"max_new_tokens":32}}'
 */
import { deployment } from '@flotilla/core';
import { DecodeServer, LLMFront, PdRouter, PrefillServer, type LLMServerOptions } from '@flotilla/deployments';
import { defaultPair } from './speculative.js';

@deployment({ placement: 'process', maxOngoingRequests: 64 })
export class Prefill extends PrefillServer {}

@deployment({ placement: 'process', maxOngoingRequests: 128 })
export class Decode extends DecodeServer {}

@deployment({ maxOngoingRequests: 256 })
export class Pd extends PdRouter {}

@deployment({ maxOngoingRequests: 256 })
export class PdFront extends LLMFront {}

export function app(args: { model?: string; tokenizer?: string; decoders?: string; threads?: string } = {}) {
  const pair = defaultPair();
  const tokenizer = args.tokenizer ?? (args.model ? undefined : pair.tokenizer);
  const options: LLMServerOptions = {
    model: args.model ?? pair.target,
    numThreads: Number(args.threads ?? 1),
    auditLog: 'none',
    ...(tokenizer ? { tokenizer } : {}),
  };
  const decode = Decode.bind(options).options({ numReplicas: Number(args.decoders ?? 2) });
  return PdFront.bind({ pd: Pd.bind(Prefill.bind(options), decode) }, { auditLog: 'none' });
}
