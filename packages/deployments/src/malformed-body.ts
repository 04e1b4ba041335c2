/**
 * Bodies the LLM routes cannot read, as the client's error (400 in OpenAI's or TGI's shape, code invalid_json),
 * never as a server fault or the runtime's own words. Two ways they arrive:
 *  - the proxy could not parse the JSON, or found it nested too deeply (core's ingress/json-depth.ts), and hands
 *    the raw text on with `bodyError` (LLMServer declares `static handlesMalformedJson = true`);
 *  - a value nested too deeply for V8's stack reached code that walks it (JSON.stringify, structured clone),
 *    which throws RangeError "Maximum call stack size exceeded".
 */
import { InvalidJsonError } from './errors.js';

const STACK_OVERFLOW = /maximum call stack/i;
const TOO_DEEP = 'the JSON nests too deeply; flatten it';

/** The error for a body the proxy handed on with `bodyError`. */
export function malformedBodyError(bodyError: string): InvalidJsonError {
  const why = STACK_OVERFLOW.test(bodyError) ? TOO_DEEP : bodyError;
  const what = /nest/i.test(why) ? 'cannot be read' : 'is not valid JSON';
  return new InvalidJsonError(
    `The request body ${what} (${why}); send a JSON object with content-type: application/json.`,
  );
}

/** A stack overflow from walking the request as InvalidJsonError; any other error as it is. */
export function asClientError(err: unknown): unknown {
  if (err instanceof RangeError && STACK_OVERFLOW.test(err.message))
    return new InvalidJsonError(`The request body cannot be read (${TOO_DEEP}).`);
  return err;
}
