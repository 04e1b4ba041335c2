/**
 * What a guard stage does to generated text, one instance per choice of one response: `push` takes the
 * next delta and returns what may be released now (a filter may hold text back until it has judged it),
 * `end` releases the rest. Once `blocked` is set the choice must end with finish_reason
 * 'content_filter' and nothing more of it is released.
 */
export interface OutputFilter {
  push(delta: string): Promise<string>;
  end(): Promise<string>;
  readonly blocked: boolean;
}

/** Runs a whole text through a fresh filter (non-streamed replies). */
export async function filterWhole(filter: OutputFilter, text: string): Promise<{ text: string; blocked: boolean }> {
  const out = (await filter.push(text)) + (filter.blocked ? '' : await filter.end());
  return { text: out, blocked: filter.blocked };
}
