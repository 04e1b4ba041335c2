/**
 * Tool calling in /v1/chat/completions through a real `serve run` of examples/llm-server.ts on the bundled
 * model (models/flotilla-stories/target), with the official openai client: tool_choice 'required' and a
 * named function generate under the tools' JSON schemas, so the call parses and matches its parameters
 * (whole, and streamed as OpenAI's tool_call deltas that add up to the same call); 'auto' passes the model's
 * text through when it writes no call (a story model does not: the parser is unit-tested on text it could
 * write); 'none' leaves the tools out of the prompt; role 'tool' messages are taken in later turns.
 */
import path from 'node:path';
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionTool } from 'openai/resources/chat/completions';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { describeWithModels, repoRoot } from '../helpers/models.js';

const MODEL = path.join(repoRoot, 'models/flotilla-stories/target');
const NAME = 'target';
let server: ServeRun;
let client: OpenAI;

const tools: ChatCompletionTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string', maxLength: 12 },
          unit: { enum: ['c', 'f'] },
        },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'count_sheep',
      parameters: {
        type: 'object',
        properties: { n: { enum: [1, 2, 3] } },
        required: ['n'],
        additionalProperties: false,
      },
    },
  },
];
const messages = [{ role: 'user' as const, content: 'What is the weather in Oslo?' }];

/** The call's arguments parse and satisfy its tool's schema (as above: required keys, types, enums, lengths). */
function checkArguments(name: string, args: string): void {
  const v = JSON.parse(args) as Record<string, unknown>;
  if (name === 'get_weather') {
    expect(Object.keys(v).sort()).toEqual(['city', 'unit']);
    expect(typeof v.city).toBe('string');
    expect((v.city as string).length).toBeLessThanOrEqual(12);
    expect(['c', 'f']).toContain(v.unit);
  } else {
    expect(name).toBe('count_sheep');
    expect(Object.keys(v)).toEqual(['n']);
    expect([1, 2, 3]).toContain(v.n);
  }
}

/** Streamed tool-call deltas added up as OpenAI's clients do: per index, id/name from the first, arguments appended. */
function accumulate(chunks: ChatCompletionChunk[]) {
  const calls: Array<{ id: string; name: string; arguments: string }> = [];
  let content = '';
  for (const c of chunks) {
    const d = c.choices[0]?.delta;
    if (!d) continue;
    content += d.content ?? '';
    for (const t of d.tool_calls ?? []) {
      if (t.id) calls[t.index] = { id: t.id, name: t.function?.name ?? '', arguments: '' };
      calls[t.index]!.arguments += t.function?.arguments ?? '';
    }
  }
  return { calls, content, finish: chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean) };
}

describeWithModels('LLMServer: tool calling through serve run (bundled flotilla-stories)', () => {
  beforeAll(async () => {
    server = await serveRun(['examples/llm-server.ts:app', `model=${MODEL}`]);
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it("tool_choice 'required' (one call): the call parses and matches its tool's parameters, finish_reason tool_calls", async () => {
    const r = await client.chat.completions.create({
      model: NAME,
      messages,
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
      temperature: 0,
      max_tokens: 64,
    });
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.tool_calls).toHaveLength(1);
    const call = choice.message.tool_calls![0]!;
    expect(call.type).toBe('function');
    expect(call.id).toMatch(/^call_[0-9a-f]{24}$/);
    if (call.type !== 'function') throw new Error('not a function call');
    checkArguments(call.function.name, call.function.arguments);
    expect(choice.message.content).toBeNull();
  });

  it('a named function: its arguments under its schema, whole and streamed as deltas adding up to the same call', async () => {
    const body = {
      model: NAME,
      messages,
      tools,
      tool_choice: { type: 'function' as const, function: { name: 'get_weather' } },
      temperature: 0,
      max_tokens: 64,
    };
    const whole = await client.chat.completions.create(body);
    const call = whole.choices[0]!.message.tool_calls![0]!;
    if (call.type !== 'function') throw new Error('not a function call');
    expect(call.function.name).toBe('get_weather');
    checkArguments('get_weather', call.function.arguments);
    expect(whole.choices[0]!.finish_reason).toBe('tool_calls');

    const chunks: ChatCompletionChunk[] = [];
    for await (const c of await client.chat.completions.create({ ...body, stream: true })) chunks.push(c);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const s = accumulate(chunks);
    expect(s.calls).toHaveLength(1);
    expect(s.calls[0]!.name).toBe('get_weather');
    expect(s.calls[0]!.arguments).toBe(call.function.arguments); // greedy: the same text
    expect(s.finish).toEqual(['tool_calls']);
    // the header delta carries id, type and name with empty arguments; argument text comes in more than one delta
    const headers = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []).filter((t) => t.id);
    expect(headers).toEqual([
      { index: 0, id: s.calls[0]!.id, type: 'function', function: { name: 'get_weather', arguments: '' } },
    ]);
    expect(chunks.filter((c) => c.choices[0]?.delta.tool_calls?.[0]?.function?.arguments).length).toBeGreaterThan(1);
  });

  it("'required' with parallel calls, streamed: each call arrives whole and matches its tool", async () => {
    const body = {
      model: NAME,
      messages,
      tools,
      tool_choice: 'required' as const,
      temperature: 0,
      max_tokens: 64,
    };
    const whole = await client.chat.completions.create(body);
    const chunks: ChatCompletionChunk[] = [];
    for await (const c of await client.chat.completions.create({ ...body, stream: true })) chunks.push(c);
    const s = accumulate(chunks);
    const wholeCalls = whole.choices[0]!.message.tool_calls!;
    expect(wholeCalls.length).toBeGreaterThanOrEqual(1);
    expect(s.calls.map((c) => [c.name, c.arguments])).toEqual(
      wholeCalls.map((c) => (c.type === 'function' ? [c.function.name, c.function.arguments] : [])),
    );
    for (const c of s.calls) checkArguments(c.name, c.arguments);
    expect(s.finish).toEqual([whole.choices[0]!.finish_reason]);
  });

  it("'auto' with a model that writes no call: its text as content, no tool_calls, finish_reason stop/length", async () => {
    const r = await client.chat.completions.create({ model: NAME, messages, tools, temperature: 0, max_tokens: 12 });
    const choice = r.choices[0]!;
    expect(choice.message.tool_calls ?? []).toEqual([]);
    expect(choice.message.content!.length).toBeGreaterThan(0);
    expect(['stop', 'length']).toContain(choice.finish_reason);
    // tools are in the prompt (the default tool prompt: this model has no template)...
    const plain = await client.chat.completions.create({ model: NAME, messages, temperature: 0, max_tokens: 1 });
    expect(r.usage!.prompt_tokens).toBeGreaterThan(plain.usage!.prompt_tokens);
    // ...and not with tool_choice 'none'
    const none = await client.chat.completions.create({
      model: NAME,
      messages,
      tools,
      tool_choice: 'none',
      temperature: 0,
      max_tokens: 1,
    });
    expect(none.usage!.prompt_tokens).toBe(plain.usage!.prompt_tokens);
  });

  it("accepts a later turn with the assistant's tool call and a role 'tool' result", async () => {
    const r = await client.chat.completions.create({
      model: NAME,
      tools,
      temperature: 0,
      max_tokens: 8,
      messages: [
        ...messages,
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'call_abc',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"city": "Oslo", "unit": "c"}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'call_abc', content: 'Sunny, 21 degrees.' },
      ],
    });
    expect(r.choices[0]!.message.role).toBe('assistant');
    expect(r.usage!.prompt_tokens).toBeGreaterThan(20);
  });

  it('refuses bad tools, choices and tool messages with 400 naming the field', async () => {
    const bad = async (body: Record<string, unknown>) =>
      (await client.chat.completions
        .create({ model: NAME, messages, max_tokens: 1, ...body } as never)
        .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect((await bad({ tools, tool_choice: { type: 'function', function: { name: 'fly' } } })).param).toBe(
      'tool_choice',
    );
    expect((await bad({ tool_choice: 'required' })).param).toBe('tool_choice');
    expect((await bad({ tools: [{ type: 'function', function: { name: 'x y' } }] })).param).toBe(
      'tools[0].function.name',
    );
    expect((await bad({ messages: [{ role: 'tool', content: 'x' }] })).param).toBe('messages[0].tool_call_id');
  });
});
