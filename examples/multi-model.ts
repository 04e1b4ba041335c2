/**
 * MultiModelServer: a catalogue of base models behind one OpenAI / TGI / llm.proto endpoint, two replicas
 * holding at most two engines each (the least recently used idle one is disposed to make room). The
 * request's `model` picks the model, and the router sends it to a replica that already holds it.
 * Everything else is LLMServer's: keys, limits, metrics, audit lines (docs/multiplexing.md).
 *
 *   serve run examples/multi-model.ts:app
 *   serve run examples/multi-model.ts:app models=small=/m/a.gguf,chat=/m/chat-hf max_models_per_replica=1
 *
 *   curl -s localhost:8000/v1/models                # the whole catalogue
 *   curl -s localhost:8000/v1/completions -H 'content-type: application/json' \
 *     -d '{"model":"llama2xs-260K","prompt":"Once upon a time","max_tokens":24,"temperature":0}'
 *   curl -s localhost:8000/generate -H 'serve_multiplexed_model_id: stories260K' \
 *     -d '{"inputs":"Once upon a time","parameters":{"max_new_tokens":24}}'   # TGI: the header names the model
 *   serve status                                    # "multiplexed models": which replica holds which
 *
 * Options (key=value): models=name=PATH,... (default: the bundled small models), tokenizer=PATH (for entries
 * without one), max_models_per_replica=N (default 2), replicas=N (default 2), api_keys=K1,K2.
 * A name outside the catalogue is 404 model_not_found.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deployment } from '@flotilla/core';
import { type CatalogueModel, MultiModelServer, type MultiModelServerOptions } from '@flotilla/deployments';

const bundled = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/fixtures/models');

/** The bundled models: a llama2.c checkpoint, its GGUF and Hugging Face copies, and a second model. */
export const BUNDLED: Record<string, string | CatalogueModel> = {
  stories260K: path.join(bundled, 'stories260K/stories260K.bin'),
  'stories260K-gguf': path.join(bundled, 'stories260K/stories260K-f32.gguf'),
  'stories260K-hf': path.join(bundled, 'stories260K-hf'),
  'llama2xs-260K': {
    model: path.join(bundled, 'llama2xs-260K/llama2xs-260K.bin'),
    tokenizer: path.join(bundled, 'stories260K/tok512.bin'),
  },
};

@deployment({ numReplicas: 2, maxOngoingRequests: 64, placement: 'thread' })
export class Models extends MultiModelServer {}

export const app = (args: Record<string, string> = {}) => {
  const { models, tokenizer, max_models_per_replica, replicas, api_keys, ...rest } = args;
  if (Object.keys(rest).length > 0)
    throw new Error(`unknown argument ${Object.keys(rest).join(', ')}; see the header of examples/multi-model.ts`);
  const options: MultiModelServerOptions = {
    models: models ?? BUNDLED,
    maxModelsPerReplica: max_models_per_replica !== undefined ? Number(max_models_per_replica) : 2,
    numThreads: 1,
    ...(tokenizer !== undefined ? { tokenizer } : {}),
    ...(api_keys !== undefined ? { apiKeys: api_keys.split(',') } : {}),
  };
  const bound = Models.bind(options);
  return replicas !== undefined ? bound.options({ numReplicas: Number(replicas) }) : bound;
};
