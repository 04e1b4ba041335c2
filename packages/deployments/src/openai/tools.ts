/**
 * Tool calling for /v1/chat/completions (OpenAI's function tools, as vLLM serves them):
 *
 * - Request: `tools` (function tools), `tool_choice` ('none' | 'auto' | 'required' | { type: 'function',
 *   function: { name } }; default 'auto' with tools, 'none' without), `parallel_tool_calls` (default true);
 *   assistant messages with `tool_calls` and `role: 'tool'` messages with `tool_call_id` in later turns.
 * - Prompt: the tools go to the chat template (chat-template.ts: the model's own template when it reads
 *   `tools`, else a system prompt asking for Hermes-style `<tool_call>{...}</tool_call>` blocks); with
 *   'none' they are left out of the prompt and nothing is parsed.
 * - 'required' and a named function generate under a JSON-schema grammar (SamplingParams.guided): a named
 *   function's output is its arguments (schema: its parameters); 'required' writes a JSON array of
 *   `{ "name", "arguments" }` objects (one item per tool's schema, at most one item without
 *   parallel_tool_calls). 'auto' generates freely and ToolCallParser finds the calls in the text:
 *   `<tool_call>{"name", "arguments"}</tool_call>` blocks (Hermes, Qwen), or a whole output that is one
 *   JSON call or an array of them (Llama 3's `{"name", "parameters"}`), optionally after `[TOOL_CALLS]`
 *   (Mistral). Text that is not a call stays content.
 * - Response: `message.tool_calls` (ids `call_…`, arguments as JSON text) and finish_reason 'tool_calls'
 *   when a call was made; streamed, OpenAI's deltas: a role chunk, `tool_calls[{ index, id, type,
 *   function: { name, arguments: '' } }]` when a call starts, `tool_calls[{ index, function: { arguments } }]`
 *   as its arguments arrive, then `{}` with the finish reason. The parser is the same for both, so a
 *   streamed answer and a whole one carry the same calls.
 */
import { randomBytes } from 'node:crypto';
import type { GuidedSpec, RequestOutput, ToolCall, ToolDefinition } from '@flotilla/engine';
import type { TokenTable } from '../handler-context.js';
import { InvalidParameterError } from '../errors.js';
import type { SampleResult } from '../generation.js';
import { type BodyReader, describe } from '../validate.js';
import { chatLogprobs } from './logprobs.js';

/** What a chunk carries besides its delta (responses.ts's ResponseMeta has it). */
export interface ToolChunkMeta {
  id: string;
  created: number;
  model: string;
  tok: TokenTable;
  req: { logprobs: number | undefined };
}

export type ToolChoice = 'none' | 'auto' | 'required' | { name: string };

export interface ToolConfig {
  tools: ToolDefinition[];
  choice: ToolChoice;
  parallel: boolean;
}

/** How the output is read: the arguments of one named function, an array of calls, or free text with calls in it. */
export type ToolMode = 'named' | 'required' | 'auto';

/** OpenAI's limit on tools per request. */
export const MAX_TOOLS = 128;
const NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** `tools`, `tool_choice`, `parallel_tool_calls` of a chat request; undefined when no tools are given. */
export function readToolConfig(r: BodyReader): ToolConfig | undefined {
  const raw = r.raw('tools');
  const choiceRaw = r.raw('tool_choice');
  const parallel = r.boolean('parallel_tool_calls') ?? true;
  if (raw === undefined) {
    if (choiceRaw !== undefined && choiceRaw !== 'none')
      throw new InvalidParameterError('tool_choice', `is ${describe(choiceRaw)} but no tools were given`);
    return undefined;
  }
  if (!Array.isArray(raw)) throw new InvalidParameterError('tools', 'must be an array of function tools');
  if (raw.length > MAX_TOOLS) throw new InvalidParameterError('tools', `at most ${MAX_TOOLS} tools, got ${raw.length}`);
  const tools = raw.map((t, i) => readTool(t, `tools[${i}]`));
  const names = new Set<string>();
  tools.forEach((t, i) => {
    if (names.has(t.function.name))
      throw new InvalidParameterError(`tools[${i}].function.name`, `'${t.function.name}' is given twice`);
    names.add(t.function.name);
  });
  const choice = readChoice(choiceRaw, tools.length > 0 ? 'auto' : 'none');
  if (typeof choice === 'object' && !names.has(choice.name))
    throw new InvalidParameterError('tool_choice', `names '${choice.name}', which is not among the tools`);
  if (choice === 'required' && tools.length === 0)
    throw new InvalidParameterError('tool_choice', "is 'required' but tools is empty");
  return { tools, choice, parallel };
}

function readTool(t: unknown, where: string): ToolDefinition {
  if (typeof t !== 'object' || t === null || Array.isArray(t))
    throw new InvalidParameterError(where, 'must be an object');
  const o = t as Record<string, unknown>;
  if (o.type !== 'function')
    throw new InvalidParameterError(`${where}.type`, `must be 'function', got ${describe(o.type)}`);
  for (const k of Object.keys(o))
    if (k !== 'type' && k !== 'function') throw new InvalidParameterError(`${where}.${k}`, 'unknown parameter');
  const f = o.function as Record<string, unknown> | undefined;
  if (typeof f !== 'object' || f === null || Array.isArray(f))
    throw new InvalidParameterError(`${where}.function`, 'must be an object { name, description?, parameters? }');
  for (const k of Object.keys(f))
    if (!['name', 'description', 'parameters', 'strict'].includes(k))
      throw new InvalidParameterError(`${where}.function.${k}`, 'unknown parameter');
  if (typeof f.name !== 'string' || !NAME.test(f.name))
    throw new InvalidParameterError(`${where}.function.name`, 'must be 1-64 characters of a-z, A-Z, 0-9, _ and -');
  if (f.description !== undefined && f.description !== null && typeof f.description !== 'string')
    throw new InvalidParameterError(`${where}.function.description`, 'must be a string');
  const params = f.parameters;
  if (params !== undefined && params !== null && (typeof params !== 'object' || Array.isArray(params)))
    throw new InvalidParameterError(`${where}.function.parameters`, 'must be a JSON Schema object');
  if (f.strict !== undefined && f.strict !== null && typeof f.strict !== 'boolean')
    throw new InvalidParameterError(`${where}.function.strict`, 'must be a boolean');
  return {
    type: 'function',
    function: {
      name: f.name,
      ...(typeof f.description === 'string' ? { description: f.description } : {}),
      ...(params ? { parameters: params as Record<string, unknown> } : {}),
      ...(typeof f.strict === 'boolean' ? { strict: f.strict } : {}),
    },
  };
}

function readChoice(v: unknown, fallback: ToolChoice): ToolChoice {
  if (v === undefined) return fallback;
  if (v === 'none' || v === 'auto' || v === 'required') return v;
  const fn = (v as { type?: unknown; function?: { name?: unknown } } | null)?.function;
  if (typeof v === 'object' && (v as { type?: unknown }).type === 'function' && typeof fn?.name === 'string')
    return { name: fn.name };
  throw new InvalidParameterError(
    'tool_choice',
    `must be 'none', 'auto', 'required' or { type: 'function', function: { name } }, got ${describe(v)}`,
  );
}

/** An assistant message's `tool_calls` (OpenAI's shape), checked; arguments kept as the JSON text given. */
export function readToolCalls(v: unknown, where: string): ToolCall[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new InvalidParameterError(`${where}.tool_calls`, 'must be an array');
  return v.map((c, j) => {
    const w = `${where}.tool_calls[${j}]`;
    const o = c as { id?: unknown; type?: unknown; function?: { name?: unknown; arguments?: unknown } } | null;
    if (typeof o !== 'object' || o === null) throw new InvalidParameterError(w, 'must be an object');
    if (o.type !== undefined && o.type !== 'function')
      throw new InvalidParameterError(`${w}.type`, "must be 'function'");
    if (typeof o.function?.name !== 'string' || o.function.name.length === 0)
      throw new InvalidParameterError(`${w}.function.name`, 'must be a non-empty string');
    const args = o.function.arguments ?? '{}';
    if (typeof args !== 'string') throw new InvalidParameterError(`${w}.function.arguments`, 'must be a JSON string');
    return {
      ...(typeof o.id === 'string' ? { id: o.id } : {}),
      type: 'function' as const,
      function: { name: o.function.name, arguments: args },
    };
  });
}

/** How the output of a request with these tools is read; null: no tool processing ('none'). */
export function toolMode(config: ToolConfig | undefined): ToolMode | null {
  if (!config || config.choice === 'none') return null;
  if (config.choice === 'auto') return 'auto';
  return config.choice === 'required' ? 'required' : 'named';
}

const NO_PARAMETERS = { type: 'object', properties: {} };

/** The grammar 'required' and a named function generate under; undefined for 'auto' and 'none'. */
export function toolGuidedSpec(config: ToolConfig | undefined): GuidedSpec | undefined {
  const mode = toolMode(config);
  if (!config || mode === 'auto' || mode === null) return undefined;
  if (mode === 'named') {
    const name = (config.choice as { name: string }).name;
    const tool = config.tools.find((t) => t.function.name === name)!;
    return { kind: 'json_schema', schema: tool.function.parameters ?? NO_PARAMETERS };
  }
  const items = config.tools.map((t) => ({
    type: 'object',
    properties: {
      name: { type: 'string', enum: [t.function.name] },
      arguments: t.function.parameters ?? NO_PARAMETERS,
    },
    required: ['name', 'arguments'],
    additionalProperties: false,
  }));
  return {
    kind: 'json_schema',
    schema: {
      type: 'array',
      minItems: 1,
      ...(config.parallel ? {} : { maxItems: 1 }),
      items: items.length === 1 ? items[0] : { anyOf: items },
    },
  };
}

/** What the parser finds, in output order. */
export type ToolEvent =
  | { type: 'content'; text: string }
  | { type: 'call'; index: number; id: string; name: string }
  | { type: 'arguments'; index: number; text: string };

export function newToolCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

const OPEN = '<tool_call>';
const CLOSE = '</tool_call>';
const MISTRAL = '[TOOL_CALLS]';

/**
 * Reads one choice's output as it grows (push) and when it ends (end), turning it into content and tool
 * calls. Pure: text in, events out.
 */
export class ToolCallParser {
  private buf = '';
  private calls = 0;
  /** auto: inside a <tool_call> block / holding a whole-output JSON call until the end / past the start. */
  private inBlock = false;
  private holdAll = false;
  private started = false;
  /** required: the scanner's position in buf, nesting, string state, where the current item began. */
  private pos = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private itemStart = -1;

  constructor(
    readonly mode: ToolMode,
    private readonly config: ToolConfig,
    private readonly newId: () => string = newToolCallId,
  ) {}

  get numCalls(): number {
    return this.calls;
  }

  push(text: string): ToolEvent[] {
    if (text.length === 0) return [];
    if (this.mode === 'named') return this.named(text);
    this.buf += text;
    return this.mode === 'required' ? this.scanRequired() : this.scanAuto(false);
  }

  /** The output ended: what was held back. */
  end(): ToolEvent[] {
    if (this.mode === 'named') return [];
    if (this.mode === 'required') {
      // no complete call (cut off at the length limit): the text is content; a cut-off item after calls is dropped
      const text = this.buf;
      this.buf = '';
      return this.calls === 0 && text.trim() ? [{ type: 'content', text }] : [];
    }
    return this.scanAuto(true);
  }

  private named(text: string): ToolEvent[] {
    const out: ToolEvent[] = [];
    if (this.calls === 0) {
      const name = (this.config.choice as { name: string }).name;
      out.push({ type: 'call', index: 0, id: this.newId(), name });
      this.calls = 1;
    }
    out.push({ type: 'arguments', index: 0, text });
    return out;
  }

  /** 'required': a JSON array of { name, arguments }; each item is a call once its object closes. */
  private scanRequired(): ToolEvent[] {
    const out: ToolEvent[] = [];
    const s = this.buf;
    for (; this.pos < s.length; this.pos++) {
      const ch = s[this.pos]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (ch === '\\') this.escaped = true;
        else if (ch === '"') this.inString = false;
        continue;
      }
      if (ch === '"') this.inString = true;
      else if (ch === '{' || ch === '[') {
        if (this.depth === 1 && ch === '{') this.itemStart = this.pos;
        this.depth++;
      } else if (ch === '}' || ch === ']') {
        this.depth--;
        if (this.depth === 1 && ch === '}' && this.itemStart >= 0) {
          const call = asCall(parseJson(s.slice(this.itemStart, this.pos + 1)));
          if (call) out.push(...(this.callEvents(call.name, call.args) ?? []));
          this.itemStart = -1;
        }
      }
    }
    return out;
  }

  /** 'auto': content, with <tool_call> blocks (or a whole-output JSON call) taken out as calls. */
  private scanAuto(final: boolean): ToolEvent[] {
    const out: ToolEvent[] = [];
    if (!this.started) {
      const head = this.buf.trimStart();
      if (head.length === 0 && !final) return out;
      // the output opens with JSON or Mistral's marker: a call only if all of it parses, so hold it to the end
      if (head.startsWith('{') || head.startsWith('[')) this.holdAll = true;
      else if (head.length < MISTRAL.length && MISTRAL.startsWith(head) && !final) return out;
      else if (head.startsWith(MISTRAL)) this.holdAll = true;
      this.started = true;
    }
    if (this.holdAll) {
      if (!final) return out;
      const text = this.buf;
      this.buf = '';
      const body = text.trim().startsWith(MISTRAL) ? text.trim().slice(MISTRAL.length) : text;
      const parsed = parseJson(body);
      const calls = (Array.isArray(parsed) ? parsed : [parsed]).map(asCall);
      const events = calls.every((c) => c !== null) ? calls.map((c) => this.callEvents(c!.name, c!.args)) : [null];
      if (parsed !== undefined && calls.length > 0 && events.every((e) => e !== null)) {
        for (const e of events) out.push(...e!);
      } else if (text.length > 0) {
        out.push({ type: 'content', text });
      }
      return out;
    }
    for (;;) {
      if (!this.inBlock) {
        const at = this.buf.indexOf(OPEN);
        if (at < 0) {
          // keep back what may be the start of <tool_call>
          const keep = final ? 0 : partialSuffix(this.buf, OPEN);
          const text = this.buf.slice(0, this.buf.length - keep);
          if (text) out.push({ type: 'content', text });
          this.buf = this.buf.slice(this.buf.length - keep);
          return out;
        }
        if (at > 0) out.push({ type: 'content', text: this.buf.slice(0, at) });
        this.buf = this.buf.slice(at + OPEN.length);
        this.inBlock = true;
      }
      const close = this.buf.indexOf(CLOSE);
      if (close < 0 && !final) return out;
      const inner = close < 0 ? this.buf : this.buf.slice(0, close);
      const call = asCall(parseJson(inner));
      const events = call ? this.callEvents(call.name, call.args) : null;
      if (events) out.push(...events);
      else out.push({ type: 'content', text: `${OPEN}${inner}${close < 0 ? '' : CLOSE}` });
      this.buf = close < 0 ? '' : this.buf.slice(close + CLOSE.length);
      this.inBlock = false;
      if (close < 0) return out;
    }
  }

  /**
   * A parsed call's events: null for an unknown tool (the caller keeps its text as content); none for a
   * second call without parallel_tool_calls (dropped).
   */
  private callEvents(name: string, args: string): ToolEvent[] | null {
    if (!this.config.tools.some((t) => t.function.name === name)) return null;
    if (!this.config.parallel && this.calls > 0) return [];
    const index = this.calls++;
    return [
      { type: 'call', index, id: this.newId(), name },
      { type: 'arguments', index, text: args },
    ];
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** { name, arguments | parameters } → the call, arguments as JSON text; anything else → null. */
function asCall(v: unknown): { name: string; args: string } | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string') return null;
  const args = o.arguments ?? o.parameters ?? {};
  if (typeof args === 'string') return parseJson(args) !== undefined ? { name: o.name, args } : null;
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return null;
  return { name: o.name, args: JSON.stringify(args) };
}

/** Length of the longest suffix of `s` that is a proper prefix of `tag`. */
function partialSuffix(s: string, tag: string): number {
  for (let n = Math.min(tag.length - 1, s.length); n > 0; n--) if (s.endsWith(tag.slice(0, n))) return n;
  return 0;
}

/** An OpenAI tool call in a whole response. */
export interface OpenAiToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A whole output read as parser events: the content (null when only calls) and the calls. */
export function collectToolEvents(events: ToolEvent[]): { content: string | null; calls: OpenAiToolCall[] } {
  let content = '';
  const calls: OpenAiToolCall[] = [];
  for (const e of events) {
    if (e.type === 'content') content += e.text;
    else if (e.type === 'call') calls.push({ id: e.id, type: 'function', function: { name: e.name, arguments: '' } });
    else calls[e.index]!.function.arguments += e.text;
  }
  return { content: calls.length > 0 && content.trim() === '' ? null : content, calls };
}

/** One whole output → content and calls, as the streamed parser reads it. */
export function parseToolOutput(
  text: string,
  mode: ToolMode,
  config: ToolConfig,
): { content: string | null; calls: OpenAiToolCall[] } {
  const parser = new ToolCallParser(mode, config);
  return collectToolEvents([...parser.push(text), ...parser.end()]);
}

/** OpenAI's finish reason for a choice that may have called tools. */
export function toolFinishReason(reason: string | null, numCalls: number): 'stop' | 'length' | 'tool_calls' | null {
  if (reason === null) return null;
  if (reason === 'length') return 'length';
  return numCalls > 0 ? 'tool_calls' : 'stop';
}

/**
 * A whole chat.completion body (chatBody's) with each choice's tool calls: the message's content and
 * tool_calls from the parser, and finish_reason 'tool_calls' where a call was made.
 */
export function withToolCalls<B extends { choices: Array<Record<string, unknown>> }>(
  body: B,
  samples: SampleResult[],
  mode: ToolMode,
  config: ToolConfig,
): B {
  body.choices = body.choices.map((choice, i) => {
    const s = samples[i]!;
    const { content, calls } = parseToolOutput(s.text, mode, config);
    const message = { ...(choice.message as Record<string, unknown>), content, tool_calls: calls };
    return { ...choice, message, finish_reason: toolFinishReason(s.finishReason, calls.length) };
  });
  return body;
}

/** The chunks of a streamed chat answer with tools: per choice a parser, OpenAI's deltas out. */
export class ToolChunkWriter {
  private readonly parsers = new Map<number, ToolCallParser>();
  private readonly pendingLogprobs = new Map<number, NonNullable<RequestOutput['logprobs']>>();

  constructor(
    private readonly m: ToolChunkMeta,
    private readonly mode: ToolMode,
    private readonly config: ToolConfig,
  ) {}

  /** The chunks for one engine output of one choice (the first of a choice opens with the role). */
  chunks(out: RequestOutput, first: boolean): object[] {
    let parser = this.parsers.get(out.index);
    if (!parser) {
      parser = new ToolCallParser(this.mode, this.config);
      this.parsers.set(out.index, parser);
    }
    if (out.logprobs?.length) {
      const held = this.pendingLogprobs.get(out.index) ?? [];
      held.push(...out.logprobs);
      this.pendingLogprobs.set(out.index, held);
    }
    const events = [...parser.push(out.text), ...(out.finished ? parser.end() : [])];
    const chunks: object[] = [];
    if (first) chunks.push(this.chunk(out.index, { role: 'assistant', content: '' }, null));
    for (const e of events) {
      const delta =
        e.type === 'content'
          ? { content: e.text }
          : e.type === 'call'
            ? {
                tool_calls: [{ index: e.index, id: e.id, type: 'function', function: { name: e.name, arguments: '' } }],
              }
            : { tool_calls: [{ index: e.index, function: { arguments: e.text } }] };
      chunks.push(this.chunk(out.index, delta, null));
    }
    if (out.finished) {
      const reason = toolFinishReason(out.finishReason, parser.numCalls);
      const last = this.chunk(out.index, {}, reason) as { choices: Array<Record<string, unknown>> };
      last.choices[0]!.stop_reason = out.stopReason;
      chunks.push(last);
    }
    return chunks;
  }

  private chunk(index: number, delta: Record<string, unknown>, finishReason: string | null): object {
    let logprobs: ReturnType<typeof chatLogprobs> | null = null;
    if (this.m.req.logprobs !== undefined) {
      const held = this.pendingLogprobs.get(index);
      // logprobs ride on the next chunk of their choice (held back text included)
      logprobs = chatLogprobs(this.m.tok, held ?? []);
      this.pendingLogprobs.delete(index);
    }
    return {
      id: this.m.id,
      object: 'chat.completion.chunk',
      created: this.m.created,
      model: this.m.model,
      choices: [{ index, delta, logprobs, finish_reason: finishReason }],
    };
  }
}
