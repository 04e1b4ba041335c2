/**
 * Logprobs in OpenAI's two shapes: the legacy completions one (parallel arrays, top alternatives as
 * { token: logprob } maps, text offsets) and chat's (one entry per token with its bytes and alternatives).
 */
import type { TokenLogprob } from '@flotilla/engine';
import type { TokenTable } from '../handler-context.js';

const utf8 = new TextDecoder('utf-8');

export interface CompletionLogprobs {
  tokens: string[];
  /** null for the prompt's first token (echo with logprobs): nothing precedes it. */
  token_logprobs: Array<number | null>;
  top_logprobs: Array<Record<string, number> | null> | null;
  text_offset: number[];
}

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

export function tokenText(tok: TokenTable, id: number): string {
  return utf8.decode(tok.tokenBytes(id));
}

/** `offset` is where these tokens' text starts in the completion (streams carry it across chunks). */
export function completionLogprobs(
  tok: TokenTable,
  lps: TokenLogprob[],
  offset: number,
  withTop: boolean,
): CompletionLogprobs {
  const out: CompletionLogprobs = {
    tokens: [],
    token_logprobs: [],
    top_logprobs: withTop ? [] : null,
    text_offset: [],
  };
  let at = offset;
  for (const lp of lps) {
    const text = tokenText(tok, lp.tokenId);
    out.tokens.push(text);
    out.token_logprobs.push(lp.logprob);
    out.text_offset.push(at);
    at += text.length;
    if (out.top_logprobs) out.top_logprobs.push(topMap(tok, lp));
  }
  return out;
}

/**
 * echo with logprobs: the prompt's tokens (`promptTokenIds`, their logprobs from the engine's
 * promptLogprobs, null for the first) in front of the completion's, offsets running through both.
 */
export function echoLogprobs(
  tok: TokenTable,
  promptTokenIds: readonly number[],
  prompt: ReadonlyArray<TokenLogprob | null>,
  completion: TokenLogprob[],
  withTop: boolean,
): CompletionLogprobs {
  const out: CompletionLogprobs = {
    tokens: [],
    token_logprobs: [],
    top_logprobs: withTop ? [] : null,
    text_offset: [],
  };
  let at = 0;
  promptTokenIds.forEach((id, i) => {
    const text = tokenText(tok, id);
    const lp = prompt[i] ?? null;
    out.tokens.push(text);
    out.token_logprobs.push(lp ? lp.logprob : null);
    out.text_offset.push(at);
    at += text.length;
    if (out.top_logprobs) out.top_logprobs.push(lp ? topMap(tok, lp) : null);
  });
  const rest = completionLogprobs(tok, completion, at, withTop);
  out.tokens.push(...rest.tokens);
  out.token_logprobs.push(...rest.token_logprobs);
  out.text_offset.push(...rest.text_offset);
  if (out.top_logprobs && rest.top_logprobs) out.top_logprobs.push(...rest.top_logprobs);
  return out;
}

function topMap(tok: TokenTable, lp: TokenLogprob): Record<string, number> {
  const top: Record<string, number> = {};
  for (const t of lp.top) top[tokenText(tok, t.tokenId)] ??= t.logprob;
  return top;
}

export function chatLogprobs(tok: TokenTable, lps: TokenLogprob[]): { content: ChatTokenLogprob[]; refusal: null } {
  const entry = (id: number, logprob: number) => {
    const bytes = tok.tokenBytes(id);
    return { token: utf8.decode(bytes), logprob, bytes: Array.from(bytes) };
  };
  return {
    content: lps.map((lp) => ({
      ...entry(lp.tokenId, lp.logprob),
      top_logprobs: lp.top.map((t) => entry(t.tokenId, t.logprob)),
    })),
    refusal: null,
  };
}
