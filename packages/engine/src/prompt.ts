/**
 * The three ways to give a prompt — text, token ids, chat messages — turned into token ids, checked
 * against the vocabulary. Problems are InvalidPromptError ("prompt: PROBLEM") or, from the chat
 * template, InvalidPromptError naming the message / ChatTemplateError.
 */
import type { ChatMessage, ChatTemplate, ToolDefinition } from './chat-template.js';
import { InvalidPromptError } from './errors.js';
import type { Tokenizer } from './tokenizer/tokenizer.js';

export type PromptInput =
  | string
  | { tokenIds: ArrayLike<number> }
  | {
      messages: ChatMessage[];
      /** End the rendered prompt with the assistant's cue. Default true. */
      addGenerationPrompt?: boolean;
      /** Function tools for the template (ChatTemplate's tools). Default none. */
      tools?: readonly ToolDefinition[];
    };

export interface TokenizedPrompt {
  tokenIds: number[];
  /**
   * The prompt as text: the string given, or the chat template's output (with BOS as the template spells
   * it). Null for token ids: decode them where the text is wanted.
   */
  text: string | null;
}

export function tokenizePrompt(input: PromptInput, tokenizer: Tokenizer, template: ChatTemplate): TokenizedPrompt {
  if (typeof input === 'string')
    return { tokenIds: checked(tokenizer.encode(input), tokenizer.vocabSize), text: input };
  if (input && typeof input === 'object' && 'tokenIds' in input) {
    const ids = input.tokenIds;
    if (!ids || typeof ids.length !== 'number')
      throw new InvalidPromptError('prompt: tokenIds must be an array of token ids');
    return { tokenIds: checked(Array.from(ids), tokenizer.vocabSize), text: null };
  }
  if (input && typeof input === 'object' && 'messages' in input) {
    const text = template.render(input.messages, {
      addGenerationPrompt: input.addGenerationPrompt ?? true,
      ...(input.tools ? { tools: input.tools } : {}),
    });
    // A template that writes BOS itself: let the tokenizer add the real token instead of spelling it out.
    const body = template.bosToken && text.startsWith(template.bosToken) ? text.slice(template.bosToken.length) : text;
    return { tokenIds: checked(tokenizer.encode(body), tokenizer.vocabSize), text };
  }
  throw new InvalidPromptError('prompt: must be a string, { tokenIds } or { messages }');
}

function checked(ids: number[], vocabSize: number): number[] {
  if (ids.length === 0) throw new InvalidPromptError('prompt: is empty (no tokens)');
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new InvalidPromptError(`prompt: token ${i} (${String(id)}) is outside the vocabulary [0, ${vocabSize})`);
    }
  }
  return ids;
}
