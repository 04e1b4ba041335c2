/**
 * POST /v1/responses — OpenAI's Responses API as vLLM serves it, on the same engine path as chat
 * (chat template, preparePrompt, the rate limiter, startGeneration):
 *
 * - Request: `input` as text or a list of items — messages ({ role, content } with text or
 *   input_text/output_text parts; `type: 'message'` optional), `function_call` items (an earlier call of
 *   the assistant) and `function_call_output` items (its result, a tool message); `instructions` (a system
 *   message first); `max_output_tokens`, `temperature`, `top_p`; `text.format` (text, json_object, or
 *   json_schema through the same guided decoding as response_format); function `tools` in the Responses
 *   shape ({ type: 'function', name, parameters, ... }) with `tool_choice` and `parallel_tool_calls`, read
 *   by tools.ts's parser; `metadata` and `user` echoed. Nothing is stored: `store` true,
 *   `previous_response_id` and `background` are refused (400); the response says `store: false`.
 * - Response: a `response` object whose `output` holds a `message` item with one `output_text` part (the
 *   openai client's `output_text` joins them) and a `function_call` item per call; status 'completed', or
 *   'incomplete' with incomplete_details.reason 'max_output_tokens' at the length limit; usage as
 *   input/output tokens.
 * - Streamed: semantic server-sent events (`event: TYPE` + `data: {..., type, sequence_number}`):
 *   response.created, response.in_progress, response.output_item.added, response.content_part.added,
 *   response.output_text.delta..., response.output_text.done, response.content_part.done,
 *   response.output_item.done (function calls: output_item.added, function_call_arguments.delta/.done,
 *   output_item.done), then response.completed (or response.incomplete).
 */
import { randomBytes } from 'node:crypto';
import type { HttpRequestLike } from '@flotilla/core';
import type { ChatMessage, GuidedSpec, RequestOutput, SamplingParams, ToolDefinition } from '@flotilla/engine';
import { InvalidParameterError } from '../errors.js';
import {
  checkParams,
  collectGeneration,
  type GenerationSpec,
  type ParamNames,
  startGeneration,
  UsageTracker,
} from '../generation.js';
import { SSE_HEADERS, type HandlerContext, type HttpChunk } from '../handler-context.js';
import { checkModelName } from '../model-name.js';
import { preparePrompt } from '../prepare-prompt.js';
import { BodyReader, describe } from '../validate.js';
import { openAiError } from './routes.js';
import { type ToolConfig, ToolCallParser, type ToolEvent, type ToolMode, toolGuidedSpec, toolMode } from './tools.js';

export interface ResponsesRequest {
  model: string | undefined;
  spec: GenerationSpec;
  stream: boolean;
  tools: ToolConfig | undefined;
  /** What the response object echoes back. */
  echo: {
    instructions: string | null;
    max_output_tokens: number | null;
    temperature: number;
    top_p: number;
    text: { format: Record<string, unknown> };
    tools: unknown[];
    tool_choice: unknown;
    parallel_tool_calls: boolean;
    metadata: Record<string, unknown>;
    user: string | null;
  };
}

const NAMES: ParamNames = {
  maxTokens: 'max_output_tokens',
  temperature: 'temperature',
  topP: 'top_p',
  prompt: 'input',
  guided: 'text.format',
};
const ROLES = new Set(['user', 'assistant', 'system', 'developer']);

export function parseResponsesRequest(body: unknown): ResponsesRequest {
  const r = BodyReader.of(body);
  const model = r.string('model');
  const instructions = r.string('instructions');
  const messages: ChatMessage[] = instructions !== undefined ? [{ role: 'system', content: instructions }] : [];
  messages.push(...readInput(r.raw('input')));
  const params: SamplingParams = {};
  const temperature = r.number('temperature', { min: 0, max: 2 });
  if (temperature !== undefined) params.temperature = temperature;
  const topP = r.raw('top_p');
  if (topP !== undefined) params.topP = topP as number;
  const maxOut = r.raw('max_output_tokens');
  if (maxOut !== undefined) params.maxTokens = maxOut as number;
  const format = readTextFormat(r);
  const tools = readTools(r);
  const toolGrammar = toolGuidedSpec(tools);
  if (format.spec && toolGrammar)
    throw new InvalidParameterError('text.format', 'cannot be combined with a tool_choice that forces a tool call');
  const guided = format.spec ?? toolGrammar;
  if (guided) params.guided = guided;
  const names = { ...NAMES, guided: format.spec ? 'text.format' : 'tool_choice' };
  checkParams(params, names);
  const stream = r.boolean('stream') ?? false;
  if (r.boolean('store') === true)
    throw new InvalidParameterError('store', 'this server does not store responses; send store: false');
  r.unsupported('previous_response_id');
  r.unsupported('conversation');
  r.unsupported('background', (v) => v === false);
  r.unsupported('include', (v) => Array.isArray(v) && v.length === 0);
  r.unsupported('reasoning', (v) => typeof v === 'object' && v !== null && Object.keys(v).length === 0);
  r.unsupported('truncation', (v) => v === 'disabled');
  r.unsupported('prompt');
  const metadata = r.raw('metadata');
  if (metadata !== undefined && (typeof metadata !== 'object' || Array.isArray(metadata)))
    throw new InvalidParameterError('metadata', 'must be an object of strings');
  const user = r.string('user');
  r.rejectUnknown();
  if (messages.length === 0) throw new InvalidParameterError('input', 'is required');
  return {
    model,
    stream,
    tools,
    spec: {
      prompt: tools && toolMode(tools) !== null ? { messages, tools: tools.tools } : { messages },
      params,
      names,
    },
    echo: {
      instructions: instructions ?? null,
      max_output_tokens: (maxOut as number | undefined) ?? null,
      temperature: temperature ?? 1,
      top_p: (topP as number | undefined) ?? 1,
      text: { format: format.echo },
      tools: tools ? (r.raw('tools') as unknown[]) : [],
      tool_choice: r.raw('tool_choice') ?? (tools && tools.tools.length > 0 ? 'auto' : 'none'),
      parallel_tool_calls: tools?.parallel ?? true,
      metadata: (metadata as Record<string, unknown> | undefined) ?? {},
      user: user ?? null,
    },
  };
}

/** `input`: a text, or message / function_call / function_call_output items → chat messages. */
function readInput(v: unknown): ChatMessage[] {
  if (v === undefined) throw new InvalidParameterError('input', 'is required');
  if (typeof v === 'string') {
    if (v.length === 0) throw new InvalidParameterError('input', 'must not be empty');
    return [{ role: 'user', content: v }];
  }
  if (!Array.isArray(v) || v.length === 0)
    throw new InvalidParameterError('input', 'must be a string or a non-empty array of input items');
  const out: ChatMessage[] = [];
  v.forEach((item, i) => {
    const where = `input[${i}]`;
    const ir = BodyReader.of(item, where, `${where}.`);
    const type = ir.string('type') ?? 'message';
    if (type === 'message') {
      const role = ir.string('role');
      if (role === undefined || !ROLES.has(role))
        throw new InvalidParameterError(`${where}.role`, `must be one of ${[...ROLES].join(', ')}`);
      const content = readContent(ir.raw('content'), `${where}.content`);
      ir.string('id');
      ir.string('status');
      ir.rejectUnknown();
      out.push({ role, content });
    } else if (type === 'function_call') {
      const callId = ir.string('call_id');
      const name = ir.string('name');
      const args = ir.string('arguments') ?? '{}';
      ir.string('id');
      ir.string('status');
      ir.rejectUnknown();
      if (!callId) throw new InvalidParameterError(`${where}.call_id`, 'is required');
      if (!name) throw new InvalidParameterError(`${where}.name`, 'is required');
      const call = { id: callId, type: 'function' as const, function: { name, arguments: args } };
      const last = out.at(-1);
      // consecutive calls are one assistant turn with several tool calls
      if (last?.role === 'assistant' && last.tool_calls && last.content === null) last.tool_calls.push(call);
      else out.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (type === 'function_call_output') {
      const callId = ir.string('call_id');
      const output = ir.raw('output');
      ir.string('id');
      ir.string('status');
      ir.rejectUnknown();
      if (!callId) throw new InvalidParameterError(`${where}.call_id`, 'is required');
      out.push({ role: 'tool', tool_call_id: callId, content: readContent(output, `${where}.output`) });
    } else {
      throw new InvalidParameterError(
        `${where}.type`,
        `items of type ${describe(type)} are not supported; use message, function_call or function_call_output`,
      );
    }
  });
  return out;
}

/** A message's content: a string, or input_text / output_text parts (joined). */
function readContent(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) throw new InvalidParameterError(where, 'must be a string or an array of text parts');
  return v
    .map((part, j) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (!p || (p.type !== 'input_text' && p.type !== 'output_text') || typeof p.text !== 'string')
        throw new InvalidParameterError(
          `${where}[${j}]`,
          `only input_text and output_text parts are supported, got ${describe((p as { type?: unknown } | null)?.type)}`,
        );
      return p.text;
    })
    .join('');
}

/** `text.format` → a GuidedSpec (json_schema, json_object) or none (text), and what the response echoes. */
function readTextFormat(r: BodyReader): { spec: GuidedSpec | undefined; echo: Record<string, unknown> } {
  const text = r.object('text');
  if (!text) return { spec: undefined, echo: { type: 'text' } };
  const f = text.object('format');
  text.string('verbosity');
  text.rejectUnknown();
  if (!f) return { spec: undefined, echo: { type: 'text' } };
  const type = f.string('type');
  if (type === 'text' || type === 'json_object') {
    f.rejectUnknown();
    return { spec: type === 'text' ? undefined : { kind: 'json_object' }, echo: { type } };
  }
  if (type !== 'json_schema')
    throw new InvalidParameterError(
      'text.format.type',
      `must be 'text', 'json_object' or 'json_schema', got ${describe(type)}`,
    );
  const name = f.string('name');
  if (name === undefined || !/^[A-Za-z0-9_-]{1,64}$/.test(name))
    throw new InvalidParameterError('text.format.name', 'is required: 1-64 letters, digits, _ or -');
  const description = f.string('description');
  const strict = f.boolean('strict');
  const schema = f.raw('schema');
  f.rejectUnknown();
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema))
    throw new InvalidParameterError('text.format.schema', 'must be a JSON Schema object');
  return {
    spec: { kind: 'json_schema', schema },
    echo: {
      type,
      name,
      schema,
      ...(description !== undefined ? { description } : {}),
      strict: strict ?? null,
    },
  };
}

/** Responses-shaped function tools ({ type, name, parameters, ... }) and tool_choice → tools.ts's config. */
function readTools(r: BodyReader): ToolConfig | undefined {
  const raw = r.raw('tools');
  const choice = r.raw('tool_choice');
  const parallel = r.boolean('parallel_tool_calls') ?? true;
  if (raw === undefined || (Array.isArray(raw) && raw.length === 0)) {
    if (choice !== undefined && choice !== 'none' && choice !== 'auto')
      throw new InvalidParameterError('tool_choice', `is ${describe(choice)} but no tools were given`);
    return undefined;
  }
  if (!Array.isArray(raw)) throw new InvalidParameterError('tools', 'must be an array of function tools');
  const tools: ToolDefinition[] = raw.map((t, i) => {
    const where = `tools[${i}]`;
    const tr = BodyReader.of(t, where, `${where}.`);
    const type = tr.string('type');
    if (type !== 'function')
      throw new InvalidParameterError(`${where}.type`, `only function tools are supported, got ${describe(type)}`);
    const name = tr.string('name');
    if (name === undefined || !/^[a-zA-Z0-9_-]{1,64}$/.test(name))
      throw new InvalidParameterError(`${where}.name`, 'must be 1-64 characters of a-z, A-Z, 0-9, _ and -');
    const description = tr.string('description');
    const parameters = tr.raw('parameters');
    if (parameters !== undefined && (typeof parameters !== 'object' || Array.isArray(parameters)))
      throw new InvalidParameterError(`${where}.parameters`, 'must be a JSON Schema object');
    tr.boolean('strict');
    tr.rejectUnknown();
    return {
      type: 'function',
      function: {
        name,
        ...(description !== undefined ? { description } : {}),
        ...(parameters !== undefined ? { parameters: parameters as Record<string, unknown> } : {}),
      },
    };
  });
  const names = new Set(tools.map((t) => t.function.name));
  if (names.size !== tools.length) throw new InvalidParameterError('tools', 'function names must be unique');
  let c: ToolConfig['choice'] = 'auto';
  if (choice === 'none' || choice === 'auto' || choice === 'required') c = choice;
  else if (choice !== undefined) {
    const named = choice as { type?: unknown; name?: unknown } | null;
    if (named?.type !== 'function' || typeof named.name !== 'string')
      throw new InvalidParameterError(
        'tool_choice',
        `must be 'none', 'auto', 'required' or { type: 'function', name }, got ${describe(choice)}`,
      );
    if (!names.has(named.name))
      throw new InvalidParameterError('tool_choice', `names '${named.name}', which is not among the tools`);
    c = { name: named.name };
  }
  return { tools, choice: c, parallel };
}

const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

type OutputItem =
  | {
      type: 'message';
      id: string;
      status: 'in_progress' | 'completed' | 'incomplete';
      role: 'assistant';
      content: Array<{ type: 'output_text'; text: string; annotations: unknown[]; logprobs: unknown[] }>;
    }
  | {
      type: 'function_call';
      id: string;
      call_id: string;
      name: string;
      arguments: string;
      status: 'in_progress' | 'completed' | 'incomplete';
    };

/**
 * Builds the response's output items from parser events and, for streams, the semantic events that
 * announce them: a message item (with one output_text part) opens at the first text and closes when a
 * call comes or the output ends; each call is a function_call item.
 */
class OutputBuilder {
  readonly items: OutputItem[] = [];
  private openText = -1;
  private readonly callItem = new Map<number, number>();

  /** Events for `ev`; the items are updated either way. */
  apply(ev: ToolEvent): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    if (ev.type === 'content') {
      if (this.openText < 0) {
        const item: OutputItem = {
          type: 'message',
          id: id('msg'),
          status: 'in_progress',
          role: 'assistant',
          content: [],
        };
        this.openText = this.items.push(item) - 1;
        out.push({ type: 'response.output_item.added', output_index: this.openText, item: structuredClone(item) });
        item.content.push({ type: 'output_text', text: '', annotations: [], logprobs: [] });
        out.push({
          type: 'response.content_part.added',
          item_id: item.id,
          output_index: this.openText,
          content_index: 0,
          part: structuredClone(item.content[0]),
        });
      }
      const item = this.items[this.openText] as Extract<OutputItem, { type: 'message' }>;
      item.content[0]!.text += ev.text;
      out.push({
        type: 'response.output_text.delta',
        item_id: item.id,
        output_index: this.openText,
        content_index: 0,
        delta: ev.text,
        logprobs: [],
      });
      return out;
    }
    if (ev.type === 'call') {
      out.push(...this.closeText('completed'));
      const item: OutputItem = {
        type: 'function_call',
        id: id('fc'),
        call_id: ev.id,
        name: ev.name,
        arguments: '',
        status: 'in_progress',
      };
      const index = this.items.push(item) - 1;
      this.callItem.set(ev.index, index);
      out.push({ type: 'response.output_item.added', output_index: index, item: { ...item } });
      return out;
    }
    const index = this.callItem.get(ev.index)!;
    const item = this.items[index] as Extract<OutputItem, { type: 'function_call' }>;
    item.arguments += ev.text;
    out.push({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index: index, delta: ev.text });
    return out;
  }

  /** The output ended: every open item is closed, with its done events. */
  finish(status: 'completed' | 'incomplete'): Array<Record<string, unknown>> {
    const out = this.closeText(status);
    for (const [, index] of this.callItem) {
      const item = this.items[index] as Extract<OutputItem, { type: 'function_call' }>;
      if (item.status !== 'in_progress') continue;
      item.status = status;
      out.push({
        type: 'response.function_call_arguments.done',
        item_id: item.id,
        output_index: index,
        arguments: item.arguments,
      });
      out.push({ type: 'response.output_item.done', output_index: index, item: { ...item } });
    }
    return out;
  }

  private closeText(status: 'completed' | 'incomplete'): Array<Record<string, unknown>> {
    if (this.openText < 0) return [];
    const index = this.openText;
    this.openText = -1;
    const item = this.items[index] as Extract<OutputItem, { type: 'message' }>;
    item.status = status;
    const part = item.content[0]!;
    return [
      {
        type: 'response.output_text.done',
        item_id: item.id,
        output_index: index,
        content_index: 0,
        text: part.text,
        logprobs: [],
      },
      {
        type: 'response.content_part.done',
        item_id: item.id,
        output_index: index,
        content_index: 0,
        part: { ...part },
      },
      { type: 'response.output_item.done', output_index: index, item: structuredClone(item) },
    ];
  }
}

/** Plain text in, content events out (no tools). */
class TextOnly {
  push(text: string): ToolEvent[] {
    return text ? [{ type: 'content', text }] : [];
  }
  end(): ToolEvent[] {
    return [];
  }
}

function outputReader(r: ResponsesRequest): { push(text: string): ToolEvent[]; end(): ToolEvent[] } {
  const mode: ToolMode | null = toolMode(r.tools);
  return mode ? new ToolCallParser(mode, r.tools!) : new TextOnly();
}

interface ResponseState {
  id: string;
  createdAt: number;
  model: string;
  status: 'in_progress' | 'completed' | 'incomplete';
  output: OutputItem[];
  usage: { input: number; output: number } | null;
}

function responseObject(r: ResponsesRequest, s: ResponseState): Record<string, unknown> {
  return {
    id: s.id,
    object: 'response',
    created_at: s.createdAt,
    status: s.status,
    background: false,
    error: null,
    incomplete_details: s.status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: r.echo.instructions,
    max_output_tokens: r.echo.max_output_tokens,
    model: s.model,
    output: s.output,
    parallel_tool_calls: r.echo.parallel_tool_calls,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: r.echo.temperature,
    text: r.echo.text,
    tool_choice: r.echo.tool_choice,
    tools: r.echo.tools,
    top_p: r.echo.top_p,
    truncation: 'disabled',
    usage: s.usage
      ? {
          input_tokens: s.usage.input,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: s.usage.output,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: s.usage.input + s.usage.output,
        }
      : null,
    user: r.echo.user,
    metadata: r.echo.metadata,
  };
}

function sseEvent(ev: Record<string, unknown>): string {
  return `event: ${ev.type as string}\ndata: ${JSON.stringify(ev)}\n\n`;
}

export async function* responses(req: HttpRequestLike, ctx: HandlerContext): AsyncGenerator<HttpChunk> {
  const r = parseResponsesRequest(req.body);
  checkModelName(r.model, ctx.model);
  const prepared = await preparePrompt(ctx, r.spec);
  ctx.promptText = prepared.promptText;
  await ctx.admit(prepared);
  const stream = startGeneration(ctx.engine, prepared, r.spec.names, { requestId: ctx.requestId, signal: ctx.signal });
  const state: ResponseState = {
    id: `resp_${randomBytes(12).toString('hex')}`,
    createdAt: Math.floor(Date.now() / 1000),
    model: ctx.model.name,
    status: 'in_progress',
    output: [],
    usage: null,
  };
  const reader = outputReader(r);
  const builder = new OutputBuilder();
  state.output = builder.items;
  const statusOf = (reason: string | null) => (reason === 'length' ? 'incomplete' : 'completed');
  if (!r.stream) {
    const { samples, usage } = await collectGeneration(stream, 1);
    Object.assign(ctx.usage, usage);
    const s = samples[0]!;
    for (const ev of [...reader.push(s.text), ...reader.end()]) builder.apply(ev);
    state.status = statusOf(s.finishReason);
    builder.finish(state.status);
    state.usage = { input: usage.promptTokens, output: usage.completionTokens };
    yield { status: 200, body: responseObject(r, state) };
    return;
  }
  yield { status: 200, headers: SSE_HEADERS, streamErrorFormat: 'openai-sse' };
  let seq = 0;
  const emit = (ev: Record<string, unknown>) => sseEvent({ ...ev, sequence_number: seq++ });
  yield emit({ type: 'response.created', response: responseObject(r, { ...state, output: [] }) });
  yield emit({ type: 'response.in_progress', response: responseObject(r, { ...state, output: [] }) });
  const usage = new UsageTracker();
  let last: RequestOutput | undefined;
  try {
    for await (const out of stream) {
      await undefined; // as in routes.ts: formatting off the step loop's critical path
      usage.add(out);
      ctx.usage.promptTokens = usage.promptTokens;
      ctx.usage.completionTokens = usage.completionTokens;
      last = out;
      const events = [...reader.push(out.text), ...(out.finished ? reader.end() : [])];
      for (const ev of events) for (const e of builder.apply(ev)) yield emit(e);
    }
  } catch (err) {
    // the status line is gone: OpenAI's in-band error event, then the end
    const e = openAiError(err).body.error;
    yield emit({ type: 'error', code: e.code, message: e.message, param: e.param });
    return;
  }
  state.status = statusOf(last?.finishReason ?? null);
  for (const e of builder.finish(state.status)) yield emit(e);
  state.usage = { input: usage.promptTokens, output: usage.completionTokens };
  const done = state.status === 'completed' ? 'response.completed' : 'response.incomplete';
  yield emit({ type: done, response: responseObject(r, state) });
}
