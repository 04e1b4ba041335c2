/** Typed errors of speculative decoding (stable codes, rebuilt across actor boundaries like the engine's). */
import { EngineError, registerWireErrors } from '../errors.js';

/** The engine's `speculative` option is inconsistent: a draft model whose vocabulary differs from the target's, k out of range. */
export class SpeculativeConfigError extends EngineError {
  override readonly code: string = 'E_SPECULATIVE_CONFIG';
}

export const specDecodeErrorClasses = { SpeculativeConfigError } as const;

registerWireErrors(specDecodeErrorClasses);
