/**
 * How a proxy ends a raw-HTTP stream that failed after its head, in the stream's own protocol. The
 * failure happens in the proxy's process (the replica died, its node was lost), so the replica cannot
 * render it: its head declares the format (`HttpResponseLike.streamErrorFormat`) and this writes it.
 * Pure: a mapped error in, the text to write out (or null: cut the connection).
 */
import type { HttpResponseLike, StreamErrorFormat } from '../contract/routes.js';
import type { MappedError } from './error-mapping.js';
import { errorBody } from './error-mapping.js';

const FORMATS: readonly StreamErrorFormat[] = ['openai-sse', 'tgi-sse', 'sse', 'ndjson', 'none'];

/** The head's declared format, else 'sse' for an event stream and 'none' for any other body. */
export function streamErrorFormatOf(head: HttpResponseLike): StreamErrorFormat {
  const declared = head.streamErrorFormat;
  if (declared !== undefined && FORMATS.includes(declared)) return declared;
  const contentType = Object.entries(head.headers ?? {}).find(([k]) => k.toLowerCase() === 'content-type')?.[1];
  return /^\s*text\/event-stream\b/i.test(contentType ?? '') ? 'sse' : 'none';
}

/**
 * The text that ends the stream with `err`, or null for 'none'. Codes are core's (ACTOR_DIED,
 * UNAVAILABLE, INTERNAL, ...), lower-cased for OpenAI, whose codes are snake_case.
 */
export function renderStreamError(format: StreamErrorFormat, err: MappedError): string | null {
  switch (format) {
    case 'openai-sse': {
      const error = {
        message: err.message,
        type: err.httpStatus >= 500 ? 'server_error' : 'invalid_request_error',
        param: null,
        code: err.code.toLowerCase(),
      };
      return `data: ${JSON.stringify({ error })}\n\ndata: [DONE]\n\n`;
    }
    case 'tgi-sse':
      return `data: ${JSON.stringify({ error: err.message, error_type: tgiErrorType(err.code) })}\n\n`;
    case 'sse':
      return `event: error\ndata: ${JSON.stringify(errorBody(err))}\n\n`;
    case 'ndjson':
      return `${JSON.stringify(errorBody(err))}\n`;
    case 'none':
      return null;
  }
}

/**
 * TGI's error types (huggingface_hub maps each to an exception class). A stream cut because its replica
 * went away or its time ran out is an incomplete generation, as TGI says of a backend stream that ends
 * without its last token; anything else is a generation error.
 */
function tgiErrorType(code: string): string {
  return code === 'ACTOR_DIED' || code === 'UNAVAILABLE' || code === 'REQUEST_TIMEOUT'
    ? 'incomplete_generation'
    : 'generation';
}
