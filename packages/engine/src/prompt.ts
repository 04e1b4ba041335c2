/**
 * The three ways to give a prompt — text, token ids, chat messages — turned into token ids.
 */
import type { ChatMessage, ChatTemplate } from './chat-template.js';
import { InvalidPromptError } from './errors.js';
import type { Tokenizer } from './tokenizer/tokenizer.js';

export type PromptInput =
  | string
  | { tokenIds: ArrayLike<number> }
  | {
      messages: ChatMessage[];
      /** End the rendered prompt with the assistant's cue. Default true. */
      addGenerationPrompt?: boolean;
    };

export function promptTokenIds(input: PromptInput, tokenizer: Tokenizer, template: ChatTemplate): number[] {
  if (typeof input === 'string') return checked(tokenizer.encode(input), tokenizer.vocabSize);
  if (input && typeof input === 'object' && 'tokenIds' in input) {
    const ids = input.tokenIds;
    if (!ids || typeof ids.length !== 'number') throw new InvalidPromptError('tokenIds must be an array of token ids');
    return checked(Array.from(ids), tokenizer.vocabSize);
  }
  if (input && typeof input === 'object' && 'messages' in input) {
    let text = template.render(input.messages, { addGenerationPrompt: input.addGenerationPrompt ?? true });
    // A template that writes BOS itself: let the tokenizer add the real token instead of spelling it out.
    if (template.bosToken && text.startsWith(template.bosToken)) text = text.slice(template.bosToken.length);
    return checked(tokenizer.encode(text), tokenizer.vocabSize);
  }
  throw new InvalidPromptError('prompt must be a string, { tokenIds } or { messages }');
}

function checked(ids: number[], vocabSize: number): number[] {
  if (ids.length === 0) throw new InvalidPromptError('prompt is empty (no tokens)');
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new InvalidPromptError(`prompt token ${i} (${String(id)}) is outside the vocabulary [0, ${vocabSize})`);
    }
  }
  return ids;
}
