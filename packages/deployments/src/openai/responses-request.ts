/**
 * POST /v1/responses' request → a ResponsesRequest: the generation spec (chat messages, sampling
 * params, guided decoding from `text.format` or a forced tool call), the function tools and their
 * choice, and what the response object echoes back. Unsupported or stored-state options are refused
 * (400, InvalidParameterError naming the parameter). See responses-api.ts for the API as a whole.
 *
 * Separate from the handler (responses-api.ts) and the output building (responses-output.ts): this is
 * pure validation of the body, tested on plain data; `input` items are read by responses-input.ts.
 */
import type { ChatMessage, GuidedSpec, SamplingParams, ToolDefinition } from '@flotilla/engine';
import { InvalidParameterError } from '../errors.js';
import { checkParams, type GenerationSpec, type ParamNames } from '../generation.js';
import { BodyReader, describe } from '../validate.js';
import { readInput } from './responses-input.js';
import { type ToolConfig, toolGuidedSpec, toolMode } from './tools.js';

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

/** The request body → ResponsesRequest; throws InvalidParameterError (400) naming the bad parameter. */
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
