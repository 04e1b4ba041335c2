/**
 * prepareGeneration (generation.ts) as every protocol front end calls it: the prompt's size is checked first
 * (prompt-limits.ts: bytes, or the count of token ids), so an oversize prompt is refused before anything
 * tokenizes it; a long text or rendered chat is then tokenized through HandlerContext.encoder (off the event
 * loop), and prepareGeneration runs on the resulting ids. Short prompts go through prepareGeneration as they are.
 */
import type { ToolDefinition } from '@flotilla/engine';
import { InvalidParameterError } from './errors.js';
import { type GenerationSpec, type PreparedGeneration, prepareGeneration } from './generation.js';
import type { HandlerContext } from './handler-context.js';
import { checkPromptSize, checkTextBytes, promptBytes } from './prompt-limits.js';

export async function preparePrompt(
  ctx: Pick<HandlerContext, 'engine' | 'encoder' | 'limits'>,
  spec: GenerationSpec,
): Promise<PreparedGeneration> {
  const param = spec.names.prompt ?? 'prompt';
  const prompt = spec.prompt;
  checkPromptSize(prompt, ctx.limits, param);
  if ('tokenIds' in prompt || promptBytes(prompt) < ctx.encoder.offLoopChars)
    return prepareGeneration(ctx.engine, spec, ctx.limits);
  let text = 'text' in prompt ? prompt.text : '';
  let body = text;
  if ('messages' in prompt) {
    ({ text, body } = renderChat(ctx, prompt.messages, true, prompt.tools));
    checkTextBytes(Buffer.byteLength(text, 'utf8'), ctx.limits, param); // the template's own text counts too
  }
  const tokenIds = await ctx.encoder.encode(body);
  const prepared = prepareGeneration(ctx.engine, { ...spec, prompt: { tokenIds } }, ctx.limits);
  // The text as given, not decoded from the ids (unknown characters would come back as others). Copied by
  // descriptor, so that no lazy field of prepareGeneration's result (its decoding promptText getter) runs.
  const fields = Object.getOwnPropertyDescriptors(prepared);
  fields.promptText = { value: text, enumerable: true, writable: true, configurable: true };
  return Object.defineProperties({}, fields) as PreparedGeneration;
}

/**
 * The chat template's text and the part of it to tokenize, as generation.ts renders it: a template that spells
 * out BOS gets the real token from the tokenizer instead.
 */
export function renderChat(
  ctx: Pick<HandlerContext, 'engine'>,
  messages: Parameters<HandlerContext['engine']['chatTemplate']['render']>[0],
  addGenerationPrompt = true,
  tools?: readonly ToolDefinition[],
): { text: string; body: string } {
  let text: string;
  try {
    text = ctx.engine.chatTemplate.render(messages, { addGenerationPrompt, ...(tools ? { tools } : {}) });
  } catch (err) {
    throw new InvalidParameterError('messages', (err as Error).message);
  }
  const bos = ctx.engine.chatTemplate.bosToken;
  return { text, body: bos && text.startsWith(bos) ? text.slice(bos.length) : text };
}
