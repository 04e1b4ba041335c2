/**
 * The Responses API's request mapping (openai/responses-api.ts) on plain data: input items → chat messages
 * (instructions first, consecutive function calls one assistant turn, outputs as tool messages), the
 * sampling fields, text.format → guided decoding, Responses-shaped tools → tool config, and refusals.
 */
import { describe, expect, it } from 'vitest';
import { parseResponsesRequest } from '../../packages/deployments/src/openai/responses-api.js';

const paramOf = (body: unknown): string | null | undefined => {
  try {
    parseResponsesRequest(body);
  } catch (e) {
    return (e as { param?: string }).param;
  }
  return undefined;
};

describe('parseResponsesRequest', () => {
  it('maps text input, instructions and the sampling fields', () => {
    const r = parseResponsesRequest({
      input: 'Hi',
      instructions: 'Be kind.',
      max_output_tokens: 9,
      temperature: 0.5,
      top_p: 0.9,
    });
    expect(r.spec.prompt).toEqual({
      messages: [
        { role: 'system', content: 'Be kind.' },
        { role: 'user', content: 'Hi' },
      ],
    });
    expect(r.spec.params).toEqual({ maxTokens: 9, temperature: 0.5, topP: 0.9 });
    expect(r.echo).toMatchObject({
      instructions: 'Be kind.',
      max_output_tokens: 9,
      temperature: 0.5,
      top_p: 0.9,
      tool_choice: 'none',
    });
    expect(r.stream).toBe(false);
  });

  it('maps message, function_call and function_call_output items', () => {
    const r = parseResponsesRequest({
      input: [
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Weather?' }] },
        { type: 'function_call', call_id: 'c1', name: 'w', arguments: '{"city":"Oslo"}' },
        { type: 'function_call', call_id: 'c2', name: 'w', arguments: '{"city":"Rome"}' },
        { type: 'function_call_output', call_id: 'c1', output: 'sunny' },
        { type: 'function_call_output', call_id: 'c2', output: 'rain' },
        { role: 'assistant', content: [{ type: 'output_text', text: 'Sunny and rain.' }] },
      ],
      tools: [{ type: 'function', name: 'w', parameters: { type: 'object' } }],
    });
    const p = r.spec.prompt as { messages: unknown[]; tools: unknown[] };
    expect(p.messages).toEqual([
      { role: 'user', content: 'Weather?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'c1', type: 'function', function: { name: 'w', arguments: '{"city":"Oslo"}' } },
          { id: 'c2', type: 'function', function: { name: 'w', arguments: '{"city":"Rome"}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'c1', content: 'sunny' },
      { role: 'tool', tool_call_id: 'c2', content: 'rain' },
      { role: 'assistant', content: 'Sunny and rain.' },
    ]);
    expect(p.tools).toEqual([{ type: 'function', function: { name: 'w', parameters: { type: 'object' } } }]);
    expect(r.tools!.choice).toBe('auto');
  });

  it('text.format json_schema and json_object become guided decoding; a forced tool call its schema', () => {
    const schema = { type: 'object', properties: { a: { type: 'integer' } } };
    const js = parseResponsesRequest({
      input: 'x',
      text: { format: { type: 'json_schema', name: 'a', schema, strict: true } },
    });
    expect(js.spec.params.guided).toEqual({ kind: 'json_schema', schema });
    expect(js.echo.text.format).toEqual({ type: 'json_schema', name: 'a', schema, strict: true });
    expect(parseResponsesRequest({ input: 'x', text: { format: { type: 'json_object' } } }).spec.params.guided).toEqual(
      {
        kind: 'json_object',
      },
    );
    expect(
      parseResponsesRequest({ input: 'x', text: { format: { type: 'text' } } }).spec.params.guided,
    ).toBeUndefined();
    const named = parseResponsesRequest({
      input: 'x',
      tools: [{ type: 'function', name: 'f', parameters: schema }],
      tool_choice: { type: 'function', name: 'f' },
    });
    expect(named.spec.params.guided).toEqual({ kind: 'json_schema', schema });
    // tool_choice none: tools out of the prompt
    const none = parseResponsesRequest({ input: 'x', tools: [{ type: 'function', name: 'f' }], tool_choice: 'none' });
    expect('tools' in none.spec.prompt).toBe(false);
  });

  it('refuses stored-response features, unknown items and fields, naming them', () => {
    expect(paramOf({ input: 'x', store: true })).toBe('store');
    expect(paramOf({ input: 'x', store: false })).toBeUndefined();
    expect(paramOf({ input: 'x', previous_response_id: 'r' })).toBe('previous_response_id');
    expect(paramOf({ input: 'x', background: true })).toBe('background');
    expect(paramOf({})).toBe('input');
    expect(paramOf({ input: [] })).toBe('input');
    expect(paramOf({ input: [{ role: 'wizard', content: 'x' }] })).toBe('input[0].role');
    expect(paramOf({ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] })).toBe(
      'input[0].content[0]',
    );
    expect(paramOf({ input: [{ type: 'function_call', name: 'f' }] })).toBe('input[0].call_id');
    expect(paramOf({ input: 'x', temperature: 3 })).toBe('temperature');
    expect(paramOf({ input: 'x', text: { format: { type: 'xml' } } })).toBe('text.format.type');
    expect(
      paramOf({ input: 'x', tools: [{ type: 'function', name: 'f' }], tool_choice: { type: 'function', name: 'g' } }),
    ).toBe('tool_choice');
    expect(
      paramOf({
        input: 'x',
        text: { format: { type: 'json_object' } },
        tools: [{ type: 'function', name: 'f' }],
        tool_choice: 'required',
      }),
    ).toBe('text.format');
    expect(paramOf({ input: 'x', seed: 1 })).toBe('seed');
  });
});
