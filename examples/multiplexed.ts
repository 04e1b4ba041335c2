/**
 * Model multiplexing: four base models behind one deployment of two replicas, each holding at most two
 * engines at a time (the least recently used is disposed to make room). The request names its model
 * with the serve_multiplexed_model_id header (or handle.options({ multiplexedModelId })), and the
 * router sends it to a replica that already holds that model.
 *
 *   serve run examples/multiplexed.ts:app
 *   curl -s localhost:8000/complete -H 'serve_multiplexed_model_id: llama2xs-260K' \
 *     -d '{"prompt":"Once upon a time","maxTokens":24}'
 *   serve status          # the "multiplexed models" table: which replica holds which model
 *   curl -s localhost:8000/metrics | grep multiplexed
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deployment, getMultiplexedModelId, getReplicaContext, multiplexed, NotFoundError } from '@flotilla/core';
import { LLMEngine, type LLMEngineOptions } from '@flotilla/engine';

const models = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/fixtures/models');

/** Model id → how to load it: the bundled small models (a llama2.c checkpoint, GGUF, Hugging Face). */
export const CATALOGUE: Record<string, LLMEngineOptions> = {
  stories260K: { model: path.join(models, 'stories260K/stories260K.bin') },
  'stories260K-gguf': { model: path.join(models, 'stories260K/stories260K-f32.gguf') },
  'stories260K-hf': { model: path.join(models, 'stories260K-hf') },
  'llama2xs-260K': {
    model: path.join(models, 'llama2xs-260K/llama2xs-260K.bin'),
    tokenizerPath: path.join(models, 'stories260K/tok512.bin'),
  },
};

@deployment({ numReplicas: 2, maxOngoingRequests: 16, placement: 'thread' })
export class BaseModels {
  /** Called on a miss only; an evicted engine is disposed (LLMEngine has [Symbol.asyncDispose]). */
  @multiplexed({ maxModelsPerReplica: 2 })
  async engine(id: string): Promise<LLMEngine> {
    const options = CATALOGUE[id];
    if (!options) throw new NotFoundError(`no model '${id}' (models: ${Object.keys(CATALOGUE).join(', ')})`);
    return LLMEngine.create({ ...options, numThreads: 1, device: 'cpu' });
  }

  async complete(req: { prompt: string; maxTokens?: number }) {
    const model = getMultiplexedModelId();
    const engine = await this.engine(model!);
    let text = '';
    for await (const out of engine.generate(req.prompt, { temperature: 0, maxTokens: req.maxTokens ?? 32 }))
      text += out.text;
    return { model, replica: getReplicaContext()?.replicaId, text };
  }

  health() {
    return 'ok';
  }
}

export const app = () => BaseModels.bind();
