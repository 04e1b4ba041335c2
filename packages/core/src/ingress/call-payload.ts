/**
 * The argument convention shared by the HTTP and gRPC proxies for generic deployment calls:
 * an empty payload is no argument, a JSON array spreads as the arguments, anything else is the single argument.
 */
import { BadRequestError } from '../errors.js';
import { exceedsJsonDepth, tooDeepMessage } from './json-depth.js';

/** Parses a JSON body or payload; BadRequestError when it does not parse or nests too deeply (json-depth.ts). */
export function parseJsonPayload(text: string | undefined): unknown {
  if (text === undefined || text.trim() === '') return undefined;
  if (exceedsJsonDepth(text)) throw new BadRequestError(tooDeepMessage(), { reason: 'json_too_deep' });
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BadRequestError(
      `Malformed JSON body: ${(err as Error).message}. Send a JSON value, e.g. ["hello"] or {"text":"hello"}.`,
    );
  }
}

export function toCallArgs(payload: unknown): unknown[] {
  if (payload === undefined) return [];
  return Array.isArray(payload) ? payload : [payload];
}

/** A new request id when the client sent none (or one unfit for a header: too long or with odd characters). */
export function acceptRequestId(given: unknown, generate: () => string): string {
  if (typeof given === 'string' && given.length > 0 && given.length <= 200 && /^[\w.:@/+=-]+$/.test(given))
    return given;
  return generate();
}
