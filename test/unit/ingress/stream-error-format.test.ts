/** The in-band errors a proxy writes when a raw-HTTP stream fails after its head (pure). */
import { describe, expect, it } from 'vitest';
import { renderStreamError, streamErrorFormatOf } from '../../../packages/core/src/ingress/stream-error-format.js';

const died = { httpStatus: 503, code: 'ACTOR_DIED', message: 'actor died: process killed by SIGKILL "x"' };

describe('stream error formats', () => {
  it("OpenAI: an error event in OpenAI's shape, then [DONE]", () => {
    const text = renderStreamError('openai-sse', died)!;
    const [event, done, rest] = text.split('\n\n');
    expect(JSON.parse(event!.slice('data: '.length))).toEqual({
      error: { message: died.message, type: 'server_error', param: null, code: 'actor_died' },
    });
    expect(done).toBe('data: [DONE]');
    expect(rest).toBe('');
    expect(
      JSON.parse(
        renderStreamError('openai-sse', { ...died, httpStatus: 400 })!
          .split('\n\n')[0]!
          .slice(6),
      ),
    ).toMatchObject({ error: { type: 'invalid_request_error' } });
  });

  it('TGI: one event { error, error_type }, incomplete_generation for a cut stream', () => {
    const text = renderStreamError('tgi-sse', died)!;
    expect(text.endsWith('\n\n')).toBe(true);
    expect(JSON.parse(text.slice(6))).toEqual({ error: died.message, error_type: 'incomplete_generation' });
    const other = renderStreamError('tgi-sse', { httpStatus: 500, code: 'INTERNAL', message: 'boom' })!;
    expect(JSON.parse(other.slice(6))).toEqual({ error: 'boom', error_type: 'generation' });
  });

  it("core: SSE `event: error` and an NDJSON line carry { error: { code, message } }; 'none' writes nothing", () => {
    expect(renderStreamError('sse', died)).toBe(
      `event: error\ndata: ${JSON.stringify({ error: { code: 'ACTOR_DIED', message: died.message } })}\n\n`,
    );
    expect(JSON.parse(renderStreamError('ndjson', died)!)).toEqual({
      error: { code: 'ACTOR_DIED', message: died.message },
    });
    expect(renderStreamError('ndjson', died)!.endsWith('\n')).toBe(true);
    expect(renderStreamError('none', died)).toBeNull();
  });

  it("a head's format: declared, else sse for an event stream, else none", () => {
    expect(streamErrorFormatOf({ status: 200, streamErrorFormat: 'tgi-sse' })).toBe('tgi-sse');
    expect(streamErrorFormatOf({ status: 200, headers: { 'Content-Type': 'text/event-stream; charset=utf-8' } })).toBe(
      'sse',
    );
    expect(streamErrorFormatOf({ status: 200, headers: { 'content-type': 'text/plain' } })).toBe('none');
    expect(streamErrorFormatOf({ status: 200 })).toBe('none');
    // A value from an untyped replica that is not a format falls back like an absent one.
    expect(
      streamErrorFormatOf({
        status: 200,
        headers: { 'content-type': 'text/event-stream' },
        streamErrorFormat: 'xml' as never,
      }),
    ).toBe('sse');
  });
});
