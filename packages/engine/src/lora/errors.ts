/**
 * Typed errors of LoRA adapters (stable codes, rebuilt across actor boundaries like the engine's). The
 * OpenAI front maps AdapterNotFoundError to 404 model_not_found and the other two to 400.
 */
import { EngineError, registerWireErrors } from '../errors.js';

/** A request or an unload names an adapter that is not loaded. `adapter` is the name asked for. */
export class AdapterNotFoundError extends EngineError {
  override readonly code: string = 'E_ADAPTER_NOT_FOUND';
  override readonly status: number = 404;
  readonly adapter: string;
  constructor(adapter: string, message = `LoRA adapter '${adapter}' is not loaded`) {
    super(message, { adapter });
    this.adapter = adapter;
  }
}

/**
 * An adapter does not fit this base model or engine: a tensor's shape differs from the base weight it
 * updates, a layer the base lacks, a rank above maxLoraRank, or a format feature the engine does not
 * run (DoRA, fan_in_fan_out, rank_pattern, ...). `tensor` names the tensor at fault when there is one.
 */
export class AdapterMismatchError extends EngineError {
  override readonly code: string = 'E_ADAPTER_MISMATCH';
  override readonly status: number = 400;
  readonly file: string;
  readonly tensor: string | undefined;
  readonly problem: string;
  constructor(file: string, problem: string, tensor?: string) {
    super(`${file}: ${problem}`, { file, ...(tensor !== undefined ? { tensor } : {}) });
    this.file = file;
    this.tensor = tensor;
    this.problem = problem;
  }
}

/** The engine was built without adapter slots (maxLoras 0), or an adapter name is taken or malformed. */
export class AdapterConfigError extends EngineError {
  override readonly code: string = 'E_ADAPTER_CONFIG';
  override readonly status: number = 400;
}

export const adapterErrorClasses = { AdapterNotFoundError, AdapterMismatchError, AdapterConfigError } as const;

registerWireErrors(adapterErrorClasses);
