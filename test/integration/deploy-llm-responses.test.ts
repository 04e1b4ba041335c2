/**
 * The Responses API (POST /v1/responses) through a real `serve run` of examples/llm-server.ts on the
 * bundled model, with the official openai client's responses.create: text and message input, instructions,
 * max_output_tokens (incomplete at the limit), output_text equal to the chat completion of the same
 * messages (the same engine path), streamed semantic events in order adding up to the same text,
 * text.format json_schema through guided decoding (response.completed), function tools (a required call as
 * a function_call item, streamed as argument deltas; earlier calls and their outputs as input items), and
 * what a server that stores nothing refuses.
 */
import path from 'node:path';
import OpenAI from 'openai';
import type { ResponseStreamEvent } from 'openai/resources/responses/responses';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { describeWithModels, repoRoot } from '../helpers/models.js';

const MODEL = path.join(repoRoot, 'models/flotilla-stories/target');
const NAME = 'target';
let server: ServeRun;
let client: OpenAI;

const schema = {
  type: 'object',
  properties: { mood: { enum: ['happy', 'sad'] }, name: { type: 'string', maxLength: 10 } },
  required: ['mood', 'name'],
  additionalProperties: false,
};

async function events(body: Record<string, unknown>): Promise<ResponseStreamEvent[]> {
  const out: ResponseStreamEvent[] = [];
  const stream = await client.responses.create({ model: NAME, ...body, stream: true } as never);
  for await (const e of stream as unknown as AsyncIterable<ResponseStreamEvent>) out.push(e);
  return out;
}

describeWithModels('LLMServer: the Responses API through serve run (bundled flotilla-stories)', () => {
  beforeAll(async () => {
    server = await serveRun(['examples/llm-server.ts:app', `model=${MODEL}`]);
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('text input with instructions: output_text as the chat completion of the same messages, incomplete at max_output_tokens', async () => {
    const r = await client.responses.create({
      model: NAME,
      input: 'Tell me about a cat.',
      instructions: 'You tell short stories.',
      max_output_tokens: 12,
      temperature: 0,
    });
    expect(r.object).toBe('response');
    expect(r.id).toMatch(/^resp_/);
    expect(r.model).toBe(NAME);
    expect((r as unknown as { store: boolean }).store).toBe(false);
    expect(r.instructions).toBe('You tell short stories.');
    expect(r.status).toBe('incomplete');
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(r.output).toHaveLength(1);
    const item = r.output[0]!;
    expect(item.type).toBe('message');
    if (item.type !== 'message') throw new Error('not a message');
    expect(item.role).toBe('assistant');
    expect(item.id).toMatch(/^msg_/);
    expect(r.output_text.length).toBeGreaterThan(0);
    expect(r.usage!.output_tokens).toBe(12);
    const chat = await client.chat.completions.create({
      model: NAME,
      messages: [
        { role: 'system', content: 'You tell short stories.' },
        { role: 'user', content: 'Tell me about a cat.' },
      ],
      max_tokens: 12,
      temperature: 0,
    });
    expect(r.output_text).toBe(chat.choices[0]!.message.content);
    expect(r.usage!.input_tokens).toBe(chat.usage!.prompt_tokens);
    expect(r.usage!.total_tokens).toBe(r.usage!.input_tokens + 12);
  });

  it('message input (strings and input_text parts) is the chat of those messages', async () => {
    const input = [
      { role: 'user' as const, content: 'Hi' },
      { role: 'assistant' as const, content: 'Hello! Shall I tell a story?' },
      { role: 'user' as const, content: [{ type: 'input_text' as const, text: 'Yes, about a dog.' }] },
    ];
    const r = await client.responses.create({ model: NAME, input, max_output_tokens: 8, temperature: 0 });
    const chat = await client.chat.completions.create({
      model: NAME,
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello! Shall I tell a story?' },
        { role: 'user', content: 'Yes, about a dog.' },
      ],
      max_tokens: 8,
      temperature: 0,
    });
    expect(r.output_text).toBe(chat.choices[0]!.message.content);
  });

  it('streams the semantic events in order, their deltas adding up to the unstreamed output_text', async () => {
    const body = { input: 'Once upon a time', max_output_tokens: 10, temperature: 0 };
    const whole = await client.responses.create({ model: NAME, ...body });
    const evs = await events(body);
    const types = evs.map((e) => e.type);
    const deltas = types.filter((t) => t === 'response.output_text.delta').length;
    expect(deltas).toBeGreaterThan(1);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
      ...Array(deltas).fill('response.output_text.delta'),
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.incomplete',
    ]);
    expect(evs.map((e) => e.sequence_number)).toEqual(evs.map((_, i) => i));
    const text = evs.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    expect(text).toBe(whole.output_text);
    const done = evs.find((e) => e.type === 'response.output_text.done');
    expect(done && 'text' in done ? done.text : '').toBe(text);
    const created = evs[0]!;
    if (created.type !== 'response.created') throw new Error('no response.created');
    expect(created.response.status).toBe('in_progress');
    const last = evs.at(-1)!;
    if (last.type !== 'response.incomplete') throw new Error('no response.incomplete');
    expect(last.response.usage!.output_tokens).toBe(10);
    expect(last.response.id).toBe(created.response.id);
  });

  it('text.format json_schema: the output parses and matches the schema; streamed, it ends with response.completed', async () => {
    const text = { format: { type: 'json_schema' as const, name: 'character', schema, strict: true } };
    const r = await client.responses.create({
      model: NAME,
      input: 'Describe a character.',
      text,
      max_output_tokens: 60,
    });
    expect(r.status).toBe('completed');
    const v = JSON.parse(r.output_text) as { mood: string; name: string };
    expect(Object.keys(v).sort()).toEqual(['mood', 'name']);
    expect(['happy', 'sad']).toContain(v.mood);
    expect(v.name.length).toBeLessThanOrEqual(10);
    expect(r.text?.format).toMatchObject({ type: 'json_schema', name: 'character' });
    const evs = await events({ input: 'Describe a character.', text, max_output_tokens: 60, temperature: 0 });
    expect(evs.at(-1)!.type).toBe('response.completed');
    const streamed = evs.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    JSON.parse(streamed);
  });

  it('function tools: a required call is a function_call item, streamed as argument deltas; calls and outputs go back as input', async () => {
    const tools = [
      {
        type: 'function' as const,
        name: 'pick_mood',
        parameters: {
          type: 'object',
          properties: { mood: { enum: ['happy', 'sad'] } },
          required: ['mood'],
          additionalProperties: false,
        },
        strict: true,
      },
    ];
    const r = await client.responses.create({
      model: NAME,
      input: 'How do you feel?',
      tools,
      tool_choice: 'required',
      parallel_tool_calls: false,
      temperature: 0,
    });
    expect(r.status).toBe('completed');
    const calls = r.output.filter((o) => o.type === 'function_call');
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    if (call.type !== 'function_call') throw new Error('not a call');
    expect(call.name).toBe('pick_mood');
    expect(call.call_id).toMatch(/^call_/);
    expect(['happy', 'sad']).toContain((JSON.parse(call.arguments) as { mood: string }).mood);
    expect(r.output_text).toBe('');

    const evs = await events({
      input: 'How do you feel?',
      tools,
      tool_choice: { type: 'function', name: 'pick_mood' },
      temperature: 0,
    });
    const added = evs.find((e) => e.type === 'response.output_item.added');
    expect(added && 'item' in added ? added.item.type : '').toBe('function_call');
    const args = evs.flatMap((e) => (e.type === 'response.function_call_arguments.delta' ? [e.delta] : [])).join('');
    const done = evs.find((e) => e.type === 'response.function_call_arguments.done');
    expect(done && 'arguments' in done ? done.arguments : null).toBe(args);
    expect(['happy', 'sad']).toContain((JSON.parse(args) as { mood: string }).mood);
    expect(evs.at(-1)!.type).toBe('response.completed');

    const next = await client.responses.create({
      model: NAME,
      tools,
      max_output_tokens: 6,
      input: [
        { role: 'user', content: 'How do you feel?' },
        { type: 'function_call', call_id: call.call_id, name: 'pick_mood', arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: 'You feel happy.' },
      ],
    });
    expect(next.output.length).toBeGreaterThan(0);
    expect(next.usage!.input_tokens).toBeGreaterThan(r.usage!.input_tokens);
  });

  it('refuses what a server that stores nothing cannot do, and bad fields, with 400 naming them', async () => {
    const bad = async (body: Record<string, unknown>) =>
      (await client.responses
        .create({ model: NAME, input: 'x', ...body } as never)
        .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect((await bad({ store: true })).param).toBe('store');
    expect((await bad({ previous_response_id: 'resp_123' })).param).toBe('previous_response_id');
    expect((await bad({ text: { format: { type: 'json_schema', schema } } })).param).toBe('text.format.name');
    expect((await bad({ tools: [{ type: 'web_search' }] })).param).toBe('tools[0].type');
    expect((await bad({ input: [{ type: 'reasoning', summary: [] }] })).param).toBe('input[0].type');
    expect((await bad({ max_output_tokens: 0 })).param).toBe('max_output_tokens');
    expect((await bad({ input: '' })).param).toBe('input');
    expect((await bad({ frobnicate: 1 })).param).toBe('frobnicate');
  });
});
