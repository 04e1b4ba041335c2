/**
 * Chat prompts: the model's Jinja chat template (tokenizer_config.json `chat_template`, GGUF
 * `tokenizer.chat_template`) rendered with @huggingface/jinja, or a plain default for models without one.
 *
 * Tools (OpenAI's function tools): a template that knows them (its source reads `tools`) gets them as
 * Hugging Face's apply_chat_template passes them — `tools` as the OpenAI tool objects, assistant messages'
 * `tool_calls` with `arguments` parsed to objects, `tool` messages with `tool_call_id`. A template that
 * does not (and the default) gets the tools described by defaultToolPrompt() in the first system message
 * instead, asking for Hermes-style `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` blocks.
 */
import { Template } from '@huggingface/jinja';
import { ChatTemplateError, InvalidPromptError } from './errors.js';

export interface ChatMessage {
  /** 'system' | 'user' | 'assistant' | 'tool' or any role the template knows. */
  role: string;
  /** Text, or OpenAI-style parts of which the text ones are joined; null on an assistant message that only calls tools. */
  content: string | Array<{ type: string; text?: string }> | null;
  name?: string;
  /** An assistant message's tool calls (OpenAI's shape; `arguments` a JSON text or an object). */
  tool_calls?: ToolCall[];
  /** A tool message: the call it answers. */
  tool_call_id?: string;
}

/** One tool call as OpenAI writes it in an assistant message. */
export interface ToolCall {
  id?: string;
  type?: 'function';
  function: { name: string; arguments: string | Record<string, unknown> };
}

/** A function tool as OpenAI's `tools` entries describe it. */
export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
}

/**
 * Used when the model has no template: one "Role: content" line per message and "Assistant:" to
 * prompt the answer. Plain text, so it works with any vocabulary (small story models included).
 */
export const DEFAULT_CHAT_TEMPLATE =
  '{% for message in messages %}{{ message.role | capitalize }}: {{ message.content }}' +
  '{% for call in message.tool_calls or [] %}<tool_call>' +
  '{{ {"name": call.function.name, "arguments": call.function.arguments} | tojson }}</tool_call>{% endfor %}' +
  '{{ "\\n" }}{% endfor %}' +
  '{% if add_generation_prompt %}Assistant:{% endif %}';

/**
 * What a template without tool support gets (in its first system message) when a request has tools:
 * the functions as JSON and how to call them, in the Hermes format the tool parser reads.
 */
export function defaultToolPrompt(tools: readonly ToolDefinition[]): string {
  const lines = tools.map((t) =>
    JSON.stringify({
      name: t.function.name,
      ...(t.function.description !== undefined ? { description: t.function.description } : {}),
      parameters: t.function.parameters ?? { type: 'object', properties: {} },
    }),
  );
  return (
    `You may call these functions:\n${lines.join('\n')}\n` +
    'To call one, answer with <tool_call>{"name": ..., "arguments": {...}}</tool_call> for each call.'
  );
}

export interface ChatTemplateOptions {
  /** Text the template writes for BOS (`bos_token`). Default '' (the tokenizer adds BOS by its own convention). */
  bosToken?: string;
  /** Text the template writes for EOS (`eos_token`). Default ''. */
  eosToken?: string;
}

export interface RenderOptions {
  /** End with the template's cue for the assistant's turn. Default true. */
  addGenerationPrompt?: boolean;
  /** Further variables for the template (documents, ...). Default {}. */
  extra?: Record<string, unknown>;
  /** Function tools the model may call (see the header). Default none. */
  tools?: readonly ToolDefinition[];
}

export class ChatTemplate {
  readonly source: string;
  readonly isDefault: boolean;
  readonly bosToken: string;
  readonly eosToken: string;
  /** The template reads `tools` itself (else tools are described in a system message, defaultToolPrompt). */
  readonly supportsTools: boolean;
  private readonly template: Template;

  /** `source`: the model's template, or undefined/empty for the default. Throws ChatTemplateError if it does not parse. */
  constructor(source: string | undefined, options: ChatTemplateOptions = {}) {
    this.isDefault = !source;
    this.source = source || DEFAULT_CHAT_TEMPLATE;
    this.bosToken = options.bosToken ?? '';
    this.eosToken = options.eosToken ?? '';
    this.supportsTools = !this.isDefault && /\btools\b/.test(this.source);
    try {
      this.template = new Template(this.source);
    } catch (err) {
      throw new ChatTemplateError(`chat template does not parse: ${(err as Error).message}`);
    }
  }

  /** The prompt text for `messages`. Throws InvalidPromptError for malformed messages, ChatTemplateError if rendering fails. */
  render(messages: unknown, options: RenderOptions = {}): string {
    let checked = checkMessages(messages);
    const tools = options.tools && options.tools.length > 0 ? options.tools : undefined;
    if (tools && !this.supportsTools) checked = withToolPrompt(checked, defaultToolPrompt(tools));
    try {
      return this.template.render({
        ...options.extra,
        ...(tools && this.supportsTools ? { tools } : {}),
        messages: checked,
        add_generation_prompt: options.addGenerationPrompt ?? true,
        bos_token: this.bosToken,
        eos_token: this.eosToken,
      });
    } catch (err) {
      throw new ChatTemplateError(`chat template failed to render: ${(err as Error).message}`);
    }
  }
}

/** A message as templates get it: content flattened to text, tool calls' arguments parsed to objects. */
interface TemplateMessage {
  role: string;
  content: string;
  name?: string;
  tool_calls?: Array<{ id?: string; type: 'function'; function: { name: string; arguments: unknown } }>;
  tool_call_id?: string;
}

/** Validates messages and flattens content parts to text. */
function checkMessages(messages: unknown): TemplateMessage[] {
  if (!Array.isArray(messages) || messages.length === 0)
    throw new InvalidPromptError('messages must be a non-empty array');
  return messages.map((m: unknown, i) => {
    if (typeof m !== 'object' || m === null) throw new InvalidPromptError(`messages[${i}] must be an object`);
    const { role, content, name, tool_calls: calls, tool_call_id: callId } = m as Record<string, unknown>;
    if (typeof role !== 'string' || role.length === 0)
      throw new InvalidPromptError(`messages[${i}].role must be a non-empty string`);
    const hasCalls = Array.isArray(calls) && calls.length > 0;
    const text =
      typeof content === 'string'
        ? content
        : Array.isArray(content)
          ? content.map((part, j) => partText(part, i, j)).join('')
          : (content === null || content === undefined) && hasCalls
            ? ''
            : null;
    if (text === null) throw new InvalidPromptError(`messages[${i}].content must be a string or an array of parts`);
    const out: TemplateMessage = { role, content: text };
    if (typeof name === 'string') out.name = name;
    if (hasCalls) out.tool_calls = (calls as unknown[]).map((c, j) => templateCall(c, i, j));
    if (typeof callId === 'string') out.tool_call_id = callId;
    return out;
  });
}

/** A tool call as templates read it (Hugging Face's convention): arguments as an object when they are JSON. */
function templateCall(c: unknown, i: number, j: number): NonNullable<TemplateMessage['tool_calls']>[number] {
  const where = `messages[${i}].tool_calls[${j}]`;
  const fn = (c as { function?: unknown } | null)?.function as { name?: unknown; arguments?: unknown } | undefined;
  if (!fn || typeof fn !== 'object' || typeof fn.name !== 'string' || fn.name.length === 0)
    throw new InvalidPromptError(`${where}.function.name must be a non-empty string`);
  let args: unknown = fn.arguments ?? {};
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      /* not JSON: the text as it is */
    }
  }
  const id = (c as { id?: unknown }).id;
  return { ...(typeof id === 'string' ? { id } : {}), type: 'function', function: { name: fn.name, arguments: args } };
}

/** The tool prompt at the head of the first system message (a new one when there is none). */
function withToolPrompt(messages: TemplateMessage[], prompt: string): TemplateMessage[] {
  if (messages[0]?.role === 'system')
    return [{ ...messages[0], content: `${prompt}\n\n${messages[0].content}` }, ...messages.slice(1)];
  return [{ role: 'system', content: prompt }, ...messages];
}

function partText(part: unknown, i: number, j: number): string {
  const p = part as { type?: unknown; text?: unknown } | null;
  if (!p || typeof p !== 'object') throw new InvalidPromptError(`messages[${i}].content[${j}] must be an object`);
  if (p.type !== 'text')
    throw new InvalidPromptError(`messages[${i}].content[${j}]: only text parts are supported, got ${String(p.type)}`);
  if (typeof p.text !== 'string') throw new InvalidPromptError(`messages[${i}].content[${j}].text must be a string`);
  return p.text;
}
