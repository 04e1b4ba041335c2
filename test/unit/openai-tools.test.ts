/**
 * Tool calling policy (openai/tools.ts) on plain data: reading tools / tool_choice / parallel_tool_calls and
 * assistant tool_calls, the grammar 'required' and a named function generate under, the parser that finds
 * calls in what a model writes ('auto': Hermes blocks, a whole-output JSON call, Mistral's marker;
 * 'required': a JSON array; named: the arguments), the same calls whether the text arrives whole or a
 * character at a time, and the chat chunks' deltas in OpenAI's shape.
 */
import { describe, expect, it } from 'vitest';
import type { RequestOutput } from '../../packages/engine/src/request-output.js';
import {
  collectToolEvents,
  parseToolOutput,
  readToolCalls,
  readToolConfig,
  type ToolConfig,
  ToolCallParser,
  ToolChunkWriter,
  type ToolEvent,
  toolFinishReason,
  toolGuidedSpec,
  toolMode,
} from '../../packages/deployments/src/openai/tools.js';
import { parseChatRequest } from '../../packages/deployments/src/openai/params.js';
import { resolveLimits } from '../../packages/deployments/src/llm-server-options.js';
import { BodyReader } from '../../packages/deployments/src/validate.js';

const weather = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
};
const time = { type: 'function' as const, function: { name: 'get_time' } };
const config = (over: Partial<ToolConfig> = {}): ToolConfig => ({
  tools: [weather, time],
  choice: 'auto',
  parallel: true,
  ...over,
});
const paramOf = (fn: () => unknown): string | null | undefined => {
  try {
    fn();
  } catch (e) {
    return (e as { param?: string }).param;
  }
  return undefined;
};
const read = (body: Record<string, unknown>) => readToolConfig(BodyReader.of(body));

/** Feeds `text` to a parser whole or one character at a time; returns the content and calls. */
function run(text: string, cfg: ToolConfig, mode = toolMode(cfg)!, pieces = false) {
  let n = 0;
  const p = new ToolCallParser(mode, cfg, () => `call_${n++}`);
  const events: ToolEvent[] = [];
  if (pieces) for (const ch of text) events.push(...p.push(ch));
  else events.push(...p.push(text));
  events.push(...p.end());
  return collectToolEvents(events);
}

describe('readToolConfig', () => {
  it('defaults: auto with tools, parallel calls on; none without', () => {
    expect(read({ tools: [weather] })).toEqual({ tools: [weather], choice: 'auto', parallel: true });
    expect(read({ tools: [] })!.choice).toBe('none');
    expect(read({})).toBeUndefined();
    expect(read({ tool_choice: 'none' })).toBeUndefined();
    expect(read({ tools: [weather], tool_choice: 'required', parallel_tool_calls: false })).toMatchObject({
      choice: 'required',
      parallel: false,
    });
    expect(
      read({ tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } } })!.choice,
    ).toEqual({
      name: 'get_weather',
    });
  });

  it('refuses malformed tools and choices, naming the field', () => {
    expect(paramOf(() => read({ tools: {} }))).toBe('tools');
    expect(paramOf(() => read({ tools: [{ type: 'retrieval' }] }))).toBe('tools[0].type');
    expect(paramOf(() => read({ tools: [{ type: 'function' }] }))).toBe('tools[0].function');
    expect(paramOf(() => read({ tools: [{ type: 'function', function: { name: 'a b' } }] }))).toBe(
      'tools[0].function.name',
    );
    expect(paramOf(() => read({ tools: [{ type: 'function', function: { name: 'a', parameters: [] } }] }))).toBe(
      'tools[0].function.parameters',
    );
    expect(paramOf(() => read({ tools: [{ type: 'function', function: { name: 'a', extra: 1 } }] }))).toBe(
      'tools[0].function.extra',
    );
    expect(paramOf(() => read({ tools: [weather, weather] }))).toBe('tools[1].function.name');
    expect(paramOf(() => read({ tools: [weather], tool_choice: 'sometimes' }))).toBe('tool_choice');
    expect(
      paramOf(() => read({ tools: [weather], tool_choice: { type: 'function', function: { name: 'nope' } } })),
    ).toBe('tool_choice');
    expect(paramOf(() => read({ tool_choice: 'required' }))).toBe('tool_choice');
    expect(paramOf(() => read({ tools: [], tool_choice: 'required' }))).toBe('tool_choice');
    expect(paramOf(() => read({ tools: [weather], parallel_tool_calls: 'yes' }))).toBe('parallel_tool_calls');
  });

  it("reads an assistant message's tool_calls", () => {
    const calls = [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }];
    expect(readToolCalls(calls, 'messages[1]')).toEqual(calls);
    expect(paramOf(() => readToolCalls([{ function: { name: 'x', arguments: { a: 1 } } }], 'messages[1]'))).toBe(
      'messages[1].tool_calls[0].function.arguments',
    );
    expect(paramOf(() => readToolCalls([{ function: {} }], 'm'))).toBe('m.tool_calls[0].function.name');
  });

  it('parseChatRequest: tools in the prompt unless none, the grammar for required and named, tool messages', () => {
    const limits = resolveLimits(undefined, 512);
    const messages = [
      { role: 'user', content: 'Weather in Oslo?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }],
      },
      { role: 'tool', tool_call_id: 'c1', content: '12 C' },
    ];
    const auto = parseChatRequest({ messages, tools: [weather] }, limits);
    expect(auto.spec.prompt).toMatchObject({ tools: [weather] });
    expect((auto.spec.prompt as { messages: unknown[] }).messages[1]).toMatchObject({
      content: null,
      tool_calls: [{ id: 'c1' }],
    });
    expect((auto.spec.prompt as { messages: unknown[] }).messages[2]).toMatchObject({
      role: 'tool',
      tool_call_id: 'c1',
    });
    expect(auto.spec.params.guided).toBeUndefined();
    const none = parseChatRequest({ messages, tools: [weather], tool_choice: 'none' }, limits);
    expect('tools' in none.spec.prompt).toBe(false);
    const named = parseChatRequest(
      { messages, tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } } },
      limits,
    );
    expect(named.spec.params.guided).toEqual({ kind: 'json_schema', schema: weather.function.parameters });
    expect(paramOf(() => parseChatRequest({ messages: [{ role: 'tool', content: 'x' }] }, limits))).toBe(
      'messages[0].tool_call_id',
    );
    expect(
      paramOf(() => parseChatRequest({ messages: [{ role: 'user', content: 'x', tool_calls: [] }] }, limits)),
    ).toBe('messages[0].tool_calls');
  });
});

describe('toolGuidedSpec', () => {
  it("named: the function's parameters; required: an array of { name, arguments } per tool; auto/none: none", () => {
    expect(toolGuidedSpec(config({ choice: { name: 'get_time' } }))).toEqual({
      kind: 'json_schema',
      schema: { type: 'object', properties: {} },
    });
    const req = toolGuidedSpec(config({ choice: 'required', parallel: false })) as { schema: Record<string, any> };
    expect(req.schema).toMatchObject({ type: 'array', minItems: 1, maxItems: 1 });
    expect(req.schema.items.anyOf.map((i: any) => i.properties.name.enum[0])).toEqual(['get_weather', 'get_time']);
    expect(req.schema.items.anyOf[0].properties.arguments).toBe(weather.function.parameters);
    expect((toolGuidedSpec(config({ choice: 'required' })) as { schema: object }).schema).not.toHaveProperty(
      'maxItems',
    );
    expect(toolGuidedSpec(config())).toBeUndefined();
    expect(toolGuidedSpec(config({ choice: 'none' }))).toBeUndefined();
  });
});

describe('ToolCallParser', () => {
  const hermes =
    'Let me check.\n<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}}</tool_call>\n' +
    '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>';

  it('auto: Hermes blocks become calls with their arguments as JSON text; the rest is content', () => {
    const r = parseToolOutput(hermes, 'auto', config());
    expect(r.content).toBe('Let me check.\n\n');
    expect(r.calls.map((c) => [c.function.name, JSON.parse(c.function.arguments)])).toEqual([
      ['get_weather', { city: 'Oslo', unit: 'c' }],
      ['get_time', {}],
    ]);
    expect(r.calls[0]!.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(r.calls[0]!.type).toBe('function');
  });

  it('auto: the same events whole and a character at a time; content streams before the block is known', () => {
    expect(run(hermes, config(), 'auto', true)).toEqual(run(hermes, config(), 'auto'));
    const p = new ToolCallParser('auto', config(), () => 'id');
    expect(p.push('Hello <tool')).toEqual([{ type: 'content', text: 'Hello ' }]);
    expect(p.push('_call>{"name": "get_time", "arguments": {}}')).toEqual([]);
    expect(p.push('</tool_call> bye')).toEqual([
      { type: 'call', index: 0, id: 'id', name: 'get_time' },
      { type: 'arguments', index: 0, text: '{}' },
      { type: 'content', text: ' bye' },
    ]);
    expect(p.push(' <tool')).toEqual([{ type: 'content', text: ' ' }]);
    expect(p.end()).toEqual([{ type: 'content', text: '<tool' }]);
  });

  it('auto: plain text, broken JSON and unknown tools stay content; an unclosed block at the end is still a call', () => {
    expect(parseToolOutput('Once upon a time', 'auto', config())).toEqual({ content: 'Once upon a time', calls: [] });
    expect(parseToolOutput('<tool_call>{"name": "get_time", </tool_call>', 'auto', config()).calls).toEqual([]);
    expect(parseToolOutput('<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', 'auto', config())).toEqual({
      content: '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
      calls: [],
    });
    const open = parseToolOutput('<tool_call>{"name": "get_time", "arguments": {}}', 'auto', config());
    expect(open.calls.map((c) => c.function.name)).toEqual(['get_time']);
    expect(open.content).toBeNull();
  });

  it("auto: a whole-output JSON call (Llama 3's parameters), an array of them, and Mistral's [TOOL_CALLS]", () => {
    const llama = parseToolOutput(' {"name": "get_weather", "parameters": {"city": "Rome"}}', 'auto', config());
    expect(llama.calls.map((c) => [c.function.name, c.function.arguments])).toEqual([
      ['get_weather', '{"city":"Rome"}'],
    ]);
    expect(llama.content).toBeNull();
    const arr = parseToolOutput(
      '[{"name": "get_time", "arguments": {}}, {"name": "get_weather", "arguments": {"city": "X"}}]',
      'auto',
      config(),
    );
    expect(arr.calls.map((c) => c.function.name)).toEqual(['get_time', 'get_weather']);
    const mistral = parseToolOutput('[TOOL_CALLS] [{"name": "get_time", "arguments": {}}]', 'auto', config());
    expect(mistral.calls.map((c) => c.function.name)).toEqual(['get_time']);
    // JSON that is not a call is content, whole
    expect(parseToolOutput('{"story": "once"}', 'auto', config())).toEqual({ content: '{"story": "once"}', calls: [] });
    expect(run('[TOOL_CALLS] [{"name": "get_time", "arguments": {}}]', config(), 'auto', true)).toEqual(
      run('[TOOL_CALLS] [{"name": "get_time", "arguments": {}}]', config(), 'auto'),
    );
  });

  it('parallel_tool_calls false keeps the first call only', () => {
    expect(parseToolOutput(hermes, 'auto', config({ parallel: false })).calls.map((c) => c.function.name)).toEqual([
      'get_weather',
    ]);
  });

  it('required: each array item is a call as soon as its object closes', () => {
    const cfg = config({ choice: 'required' });
    const p = new ToolCallParser('required', cfg, () => 'id');
    expect(p.push('[{"name": "get_weather", "arguments": {"city": "Oslo", "x": "}"}')).toEqual([]);
    expect(p.push('}, {"name": "get_')).toEqual([
      { type: 'call', index: 0, id: 'id', name: 'get_weather' },
      { type: 'arguments', index: 0, text: '{"city":"Oslo","x":"}"}' },
    ]);
    expect(p.push('time", "arguments": {}}]')).toEqual([
      { type: 'call', index: 1, id: 'id', name: 'get_time' },
      { type: 'arguments', index: 1, text: '{}' },
    ]);
    expect(p.end()).toEqual([]);
    // cut off before any call: content
    expect(parseToolOutput('[{"name": "get_wea', 'required', cfg)).toEqual({
      content: '[{"name": "get_wea',
      calls: [],
    });
  });

  it('named: the whole output is the arguments, streamed as it comes', () => {
    const cfg = config({ choice: { name: 'get_weather' } });
    const p = new ToolCallParser('named', cfg, () => 'id');
    expect(p.push('{"city"')).toEqual([
      { type: 'call', index: 0, id: 'id', name: 'get_weather' },
      { type: 'arguments', index: 0, text: '{"city"' },
    ]);
    expect(p.push(': "Oslo"}')).toEqual([{ type: 'arguments', index: 0, text: ': "Oslo"}' }]);
    expect(parseToolOutput('{"city": "Oslo"}', 'named', cfg).calls[0]!.function).toEqual({
      name: 'get_weather',
      arguments: '{"city": "Oslo"}',
    });
  });

  it('finish reasons: tool_calls when a call was made, length wins', () => {
    expect(toolFinishReason('stop', 1)).toBe('tool_calls');
    expect(toolFinishReason('stop', 0)).toBe('stop');
    expect(toolFinishReason('length', 1)).toBe('length');
    expect(toolFinishReason(null, 1)).toBeNull();
  });
});

describe('ToolChunkWriter', () => {
  const tok = { tokenBytes: () => new Uint8Array() } as never;
  const meta = { id: 'chatcmpl-1', created: 1, model: 'm', tok, req: { logprobs: undefined } };
  const out = (text: string, finished = false): RequestOutput =>
    ({
      requestId: 'r',
      index: 0,
      text,
      tokenIds: [1],
      finished,
      finishReason: finished ? 'stop' : null,
      stopReason: null,
      usage: { promptTokens: 1, completionTokens: 1 },
    }) as unknown as RequestOutput;

  it("streams OpenAI's deltas: role, call header, arguments, then the finish chunk", () => {
    const w = new ToolChunkWriter(meta, 'named', config({ choice: { name: 'get_time' } }));
    const deltas = [...w.chunks(out('{"a'), true), ...w.chunks(out('": 1}', true), false)].map(
      (c) => (c as { choices: Array<{ delta: unknown; finish_reason: unknown }> }).choices[0]!,
    );
    expect(deltas.map((d) => d.delta)).toEqual([
      { role: 'assistant', content: '' },
      {
        tool_calls: [
          {
            index: 0,
            id: expect.stringMatching(/^call_/),
            type: 'function',
            function: { name: 'get_time', arguments: '' },
          },
        ],
      },
      { tool_calls: [{ index: 0, function: { arguments: '{"a' } }] },
      { tool_calls: [{ index: 0, function: { arguments: '": 1}' } }] },
      {},
    ]);
    expect(deltas.map((d) => d.finish_reason)).toEqual([null, null, null, null, 'tool_calls']);
  });
});
