/**
 * Chat prompts: the model's Jinja chat template (tokenizer_config.json `chat_template`, GGUF
 * `tokenizer.chat_template`) rendered with @huggingface/jinja, or a plain default for models without one.
 */
import { Template } from '@huggingface/jinja';
import { ChatTemplateError, InvalidPromptError } from './errors.js';

export interface ChatMessage {
  /** 'system' | 'user' | 'assistant' | 'tool' or any role the template knows. */
  role: string;
  /** Text, or OpenAI-style parts of which the text ones are joined. */
  content: string | Array<{ type: string; text?: string }>;
  name?: string;
}

/**
 * Used when the model has no template: one "Role: content" line per message and "Assistant:" to
 * prompt the answer. Plain text, so it works with any vocabulary (small story models included).
 */
export const DEFAULT_CHAT_TEMPLATE =
  '{% for message in messages %}{{ message.role | capitalize }}: {{ message.content }}\n{% endfor %}' +
  '{% if add_generation_prompt %}Assistant:{% endif %}';

export interface ChatTemplateOptions {
  /** Text the template writes for BOS (`bos_token`). Default '' (the tokenizer adds BOS by its own convention). */
  bosToken?: string;
  /** Text the template writes for EOS (`eos_token`). Default ''. */
  eosToken?: string;
}

export interface RenderOptions {
  /** End with the template's cue for the assistant's turn. Default true. */
  addGenerationPrompt?: boolean;
  /** Further variables for the template (tools, documents, ...). Default {}. */
  extra?: Record<string, unknown>;
}

export class ChatTemplate {
  readonly source: string;
  readonly isDefault: boolean;
  readonly bosToken: string;
  readonly eosToken: string;
  private readonly template: Template;

  /** `source`: the model's template, or undefined/empty for the default. Throws ChatTemplateError if it does not parse. */
  constructor(source: string | undefined, options: ChatTemplateOptions = {}) {
    this.isDefault = !source;
    this.source = source || DEFAULT_CHAT_TEMPLATE;
    this.bosToken = options.bosToken ?? '';
    this.eosToken = options.eosToken ?? '';
    try {
      this.template = new Template(this.source);
    } catch (err) {
      throw new ChatTemplateError(`chat template does not parse: ${(err as Error).message}`);
    }
  }

  /** The prompt text for `messages`. Throws InvalidPromptError for malformed messages, ChatTemplateError if rendering fails. */
  render(messages: unknown, options: RenderOptions = {}): string {
    const checked = checkMessages(messages);
    try {
      return this.template.render({
        ...options.extra,
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

/** Validates messages and flattens content parts to text. */
function checkMessages(messages: unknown): Array<{ role: string; content: string; name?: string }> {
  if (!Array.isArray(messages) || messages.length === 0)
    throw new InvalidPromptError('messages must be a non-empty array');
  return messages.map((m: unknown, i) => {
    if (typeof m !== 'object' || m === null) throw new InvalidPromptError(`messages[${i}] must be an object`);
    const { role, content, name } = m as Record<string, unknown>;
    if (typeof role !== 'string' || role.length === 0)
      throw new InvalidPromptError(`messages[${i}].role must be a non-empty string`);
    const text =
      typeof content === 'string'
        ? content
        : Array.isArray(content)
          ? content.map((part, j) => partText(part, i, j)).join('')
          : null;
    if (text === null) throw new InvalidPromptError(`messages[${i}].content must be a string or an array of parts`);
    return typeof name === 'string' ? { role, content: text, name } : { role, content: text };
  });
}

function partText(part: unknown, i: number, j: number): string {
  const p = part as { type?: unknown; text?: unknown } | null;
  if (!p || typeof p !== 'object') throw new InvalidPromptError(`messages[${i}].content[${j}] must be an object`);
  if (p.type !== 'text')
    throw new InvalidPromptError(`messages[${i}].content[${j}]: only text parts are supported, got ${String(p.type)}`);
  if (typeof p.text !== 'string') throw new InvalidPromptError(`messages[${i}].content[${j}].text must be a string`);
  return p.text;
}
