/**
 * Which `model` names a request may carry. A server serves exactly one model, so by default it takes any
 * name as that model, as Text Generation Inference does on its single-model endpoints: Hugging Face's
 * clients send the endpoint's URL (`textGeneration` with `endpointUrl`) or 'tgi' (`chatCompletion`), other
 * tools a name of their own. Answers always carry the served name, and /v1/models lists only it.
 * With `strictModelName` (vLLM's behaviour, and what an endpoint serving several models must do) any other
 * name gets 404 model_not_found.
 */
import { ModelNotFoundError } from './errors.js';
import type { ModelInfo } from './handler-context.js';

/** Throws ModelNotFoundError when `requested` may not be taken as `model` (undefined or '' names nothing: always fine). */
export function checkModelName(requested: string | undefined, model: ModelInfo, param = 'model'): void {
  if (requested === undefined || requested === '' || requested === model.name || !model.strictName) return;
  throw new ModelNotFoundError(`The model '${requested}' does not exist; this server serves '${model.name}'.`, param);
}
