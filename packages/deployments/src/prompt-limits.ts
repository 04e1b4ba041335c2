/**
 * Size limits on a prompt that cost nothing to check: its UTF-8 bytes (text, chat messages) and its length
 * in token ids, checked before anything tokenizes, renders or decodes it. Tokenizing is linear in the
 * prompt's size and runs in JavaScript (about 2 s per MB on a loaded CPU), so a prompt far longer than the
 * model's context must be refused by its size, not by its token count. Pure policy over plain data.
 */
import type { ChatMessage } from '@flotilla/engine';
import { ContextLimitError } from './errors.js';
import type { PromptSource } from './generation.js';
import type { ResolvedLimits } from './llm-server-options.js';

/** The prompt's size in UTF-8 bytes: the text, or the messages' content parts and names (what the template renders). */
export function promptBytes(prompt: PromptSource): number {
  if ('text' in prompt) return Buffer.byteLength(prompt.text, 'utf8');
  if ('messages' in prompt)
    return (
      messagesBytes(prompt.messages) + (prompt.tools ? Buffer.byteLength(JSON.stringify(prompt.tools), 'utf8') : 0)
    );
  return 0;
}

export function messagesBytes(messages: readonly ChatMessage[]): number {
  let bytes = 0;
  for (const m of messages) {
    bytes += stringBytes(m.role) + stringBytes(m.name);
    if (m.tool_calls) bytes += stringBytes(JSON.stringify(m.tool_calls));
    if (typeof m.content === 'string') bytes += stringBytes(m.content);
    else if (Array.isArray(m.content)) {
      for (const part of m.content as unknown[]) {
        if (typeof part === 'string') bytes += stringBytes(part);
        else if (part && typeof part === 'object') bytes += stringBytes((part as { text?: unknown }).text);
      }
    }
  }
  return bytes;
}

/**
 * Refuses a prompt over limits.maxPromptBytes (text, messages) or with more ids than limits.maxPromptTokens
 * (token ids), as ContextLimitError naming `param` (the API's spelling: prompt, messages, inputs).
 */
export function checkPromptSize(prompt: PromptSource, limits: ResolvedLimits, param: string): void {
  if ('tokenIds' in prompt) {
    const n = prompt.tokenIds.length;
    if (n > limits.maxPromptTokens)
      throw new ContextLimitError(
        param,
        `is ${n} tokens; the limit is ${limits.maxPromptTokens} tokens (limits.maxPromptTokens)`,
      );
    return;
  }
  checkTextBytes(promptBytes(prompt), limits, param);
}

/** Refuses `bytes` over limits.maxPromptBytes (e.g. a rendered chat template's text). */
export function checkTextBytes(bytes: number, limits: ResolvedLimits, param: string): void {
  if (bytes > limits.maxPromptBytes) {
    throw new ContextLimitError(
      param,
      `is ${bytes} bytes; the limit is ${limits.maxPromptBytes} bytes (limits.maxPromptBytes), ` +
        `far more than fits the model's context of ${limits.maxPromptTokens + 1} tokens`,
    );
  }
}

function stringBytes(s: unknown): number {
  return typeof s === 'string' ? Buffer.byteLength(s, 'utf8') : 0;
}
