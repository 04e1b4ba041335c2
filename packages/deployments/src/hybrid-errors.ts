/** HybridRouter's error: no model could answer. Registered with core's wire registry when this module loads. */
import { registerErrorClasses } from '@flotilla/core';

/** No model could answer: both failed or both circuits are open. */
export class HybridUnavailableError extends Error {
  readonly code = 'E_HYBRID_UNAVAILABLE';
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'HybridUnavailableError';
  }
}
registerErrorClasses({ HybridUnavailableError });

/** The error once every model was tried: the last failure's message, or the open circuits. */
export function noModelAnswered(lastError: unknown): HybridUnavailableError {
  return new HybridUnavailableError(
    `no model could answer: ${(lastError as Error | undefined)?.message ?? 'both circuits are open'}`,
    lastError,
  );
}
