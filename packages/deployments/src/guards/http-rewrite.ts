/**
 * Guard stages in front of an LLM server's HTTP API (OpenAI and TGI routes, as LLMServer serves them):
 * where the prompt text sits in each request body, and where the generated text sits in each reply —
 * whole JSON bodies and server-sent events. Pure over plain data; the guard supplies the checks.
 *
 * Request fields checked: OpenAI completions `prompt` (a string or strings; token-id prompts pass
 * unchecked), chat `messages[].content` (a string or text parts), TGI `inputs`. Reply fields filtered:
 * OpenAI `choices[].text`, `choices[].message.content`, `choices[].delta.content`; TGI `token.text` and
 * `generated_text`. Routes that carry no generated text (/v1/models, /tokenize, /health, ...) pass.
 */
import { filterWhole, type OutputFilter } from './output-filter.js';

/**
 * 'openai-input': routes whose request text is checked but whose reply carries no generated text in a
 * shape the rewriter knows (/v1/embeddings), or a shape it does not rewrite (/v1/responses: see below).
 */
export type LlmApi = 'openai' | 'openai-input' | 'tgi' | 'none';
export type PromptCheck = (text: string, param: string) => Promise<string>;

export function apiOf(method: string, path: string): LlmApi {
  if (method !== 'POST') return 'none';
  const p = path.replace(/\/+$/, '') || '/';
  if (p === '/v1/completions' || p === '/v1/chat/completions') return 'openai';
  if (p === '/v1/responses' || p === '/v1/embeddings') return 'openai-input';
  if (p === '/generate' || p === '/generate_stream' || p === '/') return 'tgi';
  return 'none';
}

/** The body with every prompt text replaced by what `check` returns (which may throw to refuse). */
export async function checkRequestBody(api: LlmApi, body: unknown, check: PromptCheck): Promise<unknown> {
  if (api === 'none' || typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const out: Record<string, unknown> = { ...(body as Record<string, unknown>) };
  if (api === 'tgi') {
    if (typeof out.inputs === 'string') out.inputs = await check(out.inputs, 'inputs');
    return out;
  }
  if (api === 'openai-input') {
    // /v1/embeddings `input`, /v1/responses `input` (text or message items) and `instructions`.
    if (typeof out.instructions === 'string') out.instructions = await check(out.instructions, 'instructions');
    if (typeof out.input === 'string') out.input = await check(out.input, 'input');
    else if (Array.isArray(out.input)) {
      out.input = await Promise.all(
        out.input.map(async (item: unknown) => {
          if (typeof item === 'string') return check(item, 'input');
          if (typeof item !== 'object' || item === null) return item;
          const it = { ...(item as Record<string, unknown>) };
          if (typeof it.content === 'string') it.content = await check(it.content, 'input');
          else if (Array.isArray(it.content)) {
            it.content = await Promise.all(
              it.content.map(async (part: unknown) => {
                const pt = part as { text?: unknown };
                return typeof pt?.text === 'string' ? { ...pt, text: await check(pt.text, 'input') } : part;
              }),
            );
          }
          if (typeof it.output === 'string') it.output = await check(it.output, 'input');
          return it;
        }),
      );
    }
    return out;
  }
  if (typeof out.prompt === 'string') out.prompt = await check(out.prompt, 'prompt');
  else if (Array.isArray(out.prompt) && out.prompt.every((p) => typeof p === 'string')) {
    out.prompt = await Promise.all(out.prompt.map((p) => check(p as string, 'prompt')));
  }
  if (Array.isArray(out.messages)) {
    out.messages = await Promise.all(
      out.messages.map(async (m: unknown) => {
        if (typeof m !== 'object' || m === null) return m;
        const msg = { ...(m as Record<string, unknown>) };
        if (typeof msg.content === 'string') msg.content = await check(msg.content, 'messages');
        else if (Array.isArray(msg.content)) {
          msg.content = await Promise.all(
            msg.content.map(async (part: unknown) => {
              const p = part as { type?: string; text?: unknown };
              return p?.type === 'text' && typeof p.text === 'string'
                ? { ...p, text: await check(p.text, 'messages') }
                : part;
            }),
          );
        }
        return msg;
      }),
    );
  }
  return out;
}

const WITHHELD = 'The output was withheld by the content filter.';

/**
 * Rewrites one response's generated text through per-choice output filters. One instance per response.
 * `rewriteBody` for a whole JSON reply; `rewriteEvent` for each server-sent event chunk of a stream
 * (`data: {...}\n\n`), returning the chunk to send ('' to send nothing).
 */
export class ResponseRewriter {
  private readonly filters = new Map<number, OutputFilter>();
  private readonly closed = new Set<number>();
  /** TGI streams end on the first block with an error event; nothing after it is sent. */
  private ended = false;

  constructor(
    private readonly api: LlmApi,
    private readonly newFilter: () => OutputFilter,
  ) {}

  async rewriteBody(body: unknown): Promise<{ body: unknown; status?: number }> {
    if (this.api === 'openai' && isRecord(body) && Array.isArray(body.choices)) {
      const choices = await Promise.all(
        body.choices.map(async (c: unknown) => {
          if (!isRecord(c)) return c;
          const message = isRecord(c.message) ? c.message : undefined;
          const text =
            typeof c.text === 'string' ? c.text : typeof message?.content === 'string' ? message.content : null;
          if (text === null) return c;
          const r = await filterWhole(this.newFilter(), text);
          const next: Record<string, unknown> = message
            ? { ...c, message: { ...message, content: r.text } }
            : { ...c, text: r.text };
          if (r.blocked) next.finish_reason = 'content_filter';
          return next;
        }),
      );
      return { body: { ...body, choices } };
    }
    if (this.api === 'tgi') {
      const one = async (b: unknown): Promise<{ value: unknown; blocked: boolean }> => {
        if (!isRecord(b) || typeof b.generated_text !== 'string') return { value: b, blocked: false };
        const r = await filterWhole(this.newFilter(), b.generated_text);
        return { value: { ...b, generated_text: r.text }, blocked: r.blocked };
      };
      const results = Array.isArray(body) ? await Promise.all(body.map(one)) : [await one(body)];
      // TGI has no 'content_filter' finish reason: a withheld reply is an error in TGI's shape.
      if (results.some((r) => r.blocked))
        return { status: 422, body: { error: WITHHELD, error_type: 'content_filter' } };
      return { body: Array.isArray(body) ? results.map((r) => r.value) : results[0]!.value };
    }
    return { body };
  }

  async rewriteEvent(chunk: string): Promise<string> {
    if (this.ended) return '';
    if (this.api === 'none') return chunk;
    let out = '';
    for (const event of chunk.split('\n\n')) {
      if (event === '') continue;
      const data = event.startsWith('data: ') ? event.slice(6) : null;
      if (data === null || data === '[DONE]') {
        out += `${event}\n\n`;
        continue;
      }
      let json: unknown;
      try {
        json = JSON.parse(data);
      } catch {
        out += `${event}\n\n`;
        continue;
      }
      const next = this.api === 'openai' ? await this.openAiEvent(json) : await this.tgiEvent(json);
      if (next !== null) out += `data: ${JSON.stringify(next)}\n\n`;
      if (this.ended) break;
    }
    return out;
  }

  private filterOf(index: number): OutputFilter {
    let f = this.filters.get(index);
    if (!f) this.filters.set(index, (f = this.newFilter()));
    return f;
  }

  private async openAiEvent(json: unknown): Promise<unknown> {
    if (!isRecord(json) || !Array.isArray(json.choices)) return json;
    const choices: unknown[] = [];
    for (const c of json.choices) {
      if (!isRecord(c)) continue;
      const index = typeof c.index === 'number' ? c.index : 0;
      if (this.closed.has(index)) continue;
      const delta = isRecord(c.delta) ? c.delta : undefined;
      const text = typeof c.text === 'string' ? c.text : typeof delta?.content === 'string' ? delta.content : null;
      if (text === null && c.finish_reason == null) {
        choices.push(c);
        continue;
      }
      const f = this.filterOf(index);
      let released = text === null ? '' : await f.push(text);
      if (!f.blocked && c.finish_reason != null) released += await f.end();
      const next: Record<string, unknown> = delta
        ? { ...c, delta: { ...delta, content: released } }
        : { ...c, text: released };
      if (f.blocked) {
        next.finish_reason = 'content_filter';
        this.closed.add(index);
      }
      choices.push(next);
    }
    if (choices.length === 0 && json.usage == null) return null;
    return { ...json, choices };
  }

  private async tgiEvent(json: unknown): Promise<unknown> {
    if (!isRecord(json) || !isRecord(json.token)) return json;
    const f = this.filterOf(0);
    let released = await f.push(typeof json.token.text === 'string' ? json.token.text : '');
    const last = json.generated_text !== null && json.generated_text !== undefined;
    if (!f.blocked && last) released += await f.end();
    if (f.blocked) {
      this.ended = true;
      return { error: WITHHELD, error_type: 'content_filter' };
    }
    const next: Record<string, unknown> = { ...json, token: { ...json.token, text: released } };
    if (last && typeof json.generated_text === 'string') {
      next.generated_text = (await filterWhole(this.newFilter(), json.generated_text)).text;
    }
    return next;
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
