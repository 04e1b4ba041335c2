/**
 * The Responses API's output: the `output` items (a `message` item with one output_text part, a
 * `function_call` item per call) built from the text/tool-call parser's events, the semantic stream
 * events announcing each step (output_item.added, content_part.added, output_text.delta, ...done), and
 * the `response` object around them (status, usage, the request's echoed settings).
 *
 * Separate from responses-api.ts, which runs the generation and writes the HTTP/SSE answer: this is
 * pure state and shapes, the same for the whole and the streamed answer.
 */
import { randomBytes } from 'node:crypto';
import type { ResponsesRequest } from './responses-request.js';
import { ToolCallParser, type ToolEvent, type ToolMode, toolMode } from './tools.js';

const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('hex')}`;

export type OutputItem =
  | {
      type: 'message';
      id: string;
      status: 'in_progress' | 'completed' | 'incomplete';
      role: 'assistant';
      content: Array<{ type: 'output_text'; text: string; annotations: unknown[]; logprobs: unknown[] }>;
    }
  | {
      type: 'function_call';
      id: string;
      call_id: string;
      name: string;
      arguments: string;
      status: 'in_progress' | 'completed' | 'incomplete';
    };

/**
 * Builds the response's output items from parser events and, for streams, the semantic events that
 * announce them: a message item (with one output_text part) opens at the first text and closes when a
 * call comes or the output ends; each call is a function_call item.
 */
export class OutputBuilder {
  readonly items: OutputItem[] = [];
  private openText = -1;
  private readonly callItem = new Map<number, number>();

  /** Events for `ev`; the items are updated either way. */
  apply(ev: ToolEvent): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    if (ev.type === 'content') {
      if (this.openText < 0) {
        const item: OutputItem = {
          type: 'message',
          id: id('msg'),
          status: 'in_progress',
          role: 'assistant',
          content: [],
        };
        this.openText = this.items.push(item) - 1;
        out.push({ type: 'response.output_item.added', output_index: this.openText, item: structuredClone(item) });
        item.content.push({ type: 'output_text', text: '', annotations: [], logprobs: [] });
        out.push({
          type: 'response.content_part.added',
          item_id: item.id,
          output_index: this.openText,
          content_index: 0,
          part: structuredClone(item.content[0]),
        });
      }
      const item = this.items[this.openText] as Extract<OutputItem, { type: 'message' }>;
      item.content[0]!.text += ev.text;
      out.push({
        type: 'response.output_text.delta',
        item_id: item.id,
        output_index: this.openText,
        content_index: 0,
        delta: ev.text,
        logprobs: [],
      });
      return out;
    }
    if (ev.type === 'call') {
      out.push(...this.closeText('completed'));
      const item: OutputItem = {
        type: 'function_call',
        id: id('fc'),
        call_id: ev.id,
        name: ev.name,
        arguments: '',
        status: 'in_progress',
      };
      const index = this.items.push(item) - 1;
      this.callItem.set(ev.index, index);
      out.push({ type: 'response.output_item.added', output_index: index, item: { ...item } });
      return out;
    }
    const index = this.callItem.get(ev.index)!;
    const item = this.items[index] as Extract<OutputItem, { type: 'function_call' }>;
    item.arguments += ev.text;
    out.push({ type: 'response.function_call_arguments.delta', item_id: item.id, output_index: index, delta: ev.text });
    return out;
  }

  /** The output ended: every open item is closed, with its done events. */
  finish(status: 'completed' | 'incomplete'): Array<Record<string, unknown>> {
    const out = this.closeText(status);
    for (const [, index] of this.callItem) {
      const item = this.items[index] as Extract<OutputItem, { type: 'function_call' }>;
      if (item.status !== 'in_progress') continue;
      item.status = status;
      out.push({
        type: 'response.function_call_arguments.done',
        item_id: item.id,
        output_index: index,
        arguments: item.arguments,
      });
      out.push({ type: 'response.output_item.done', output_index: index, item: { ...item } });
    }
    return out;
  }

  private closeText(status: 'completed' | 'incomplete'): Array<Record<string, unknown>> {
    if (this.openText < 0) return [];
    const index = this.openText;
    this.openText = -1;
    const item = this.items[index] as Extract<OutputItem, { type: 'message' }>;
    item.status = status;
    const part = item.content[0]!;
    return [
      {
        type: 'response.output_text.done',
        item_id: item.id,
        output_index: index,
        content_index: 0,
        text: part.text,
        logprobs: [],
      },
      {
        type: 'response.content_part.done',
        item_id: item.id,
        output_index: index,
        content_index: 0,
        part: { ...part },
      },
      { type: 'response.output_item.done', output_index: index, item: structuredClone(item) },
    ];
  }
}

/** Plain text in, content events out (no tools). */
class TextOnly {
  push(text: string): ToolEvent[] {
    return text ? [{ type: 'content', text }] : [];
  }
  end(): ToolEvent[] {
    return [];
  }
}

/** The parser of the generated text: tool calls when the request has tools in play, else plain text. */
export function outputReader(r: ResponsesRequest): { push(text: string): ToolEvent[]; end(): ToolEvent[] } {
  const mode: ToolMode | null = toolMode(r.tools);
  return mode ? new ToolCallParser(mode, r.tools!) : new TextOnly();
}

export interface ResponseState {
  id: string;
  createdAt: number;
  model: string;
  status: 'in_progress' | 'completed' | 'incomplete';
  output: OutputItem[];
  usage: { input: number; output: number } | null;
}

/** The `response` object: `s` (id, status, output, usage) with the request's echoed settings. */
export function responseObject(r: ResponsesRequest, s: ResponseState): Record<string, unknown> {
  return {
    id: s.id,
    object: 'response',
    created_at: s.createdAt,
    status: s.status,
    background: false,
    error: null,
    incomplete_details: s.status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: r.echo.instructions,
    max_output_tokens: r.echo.max_output_tokens,
    model: s.model,
    output: s.output,
    parallel_tool_calls: r.echo.parallel_tool_calls,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: r.echo.temperature,
    text: r.echo.text,
    tool_choice: r.echo.tool_choice,
    tools: r.echo.tools,
    top_p: r.echo.top_p,
    truncation: 'disabled',
    usage: s.usage
      ? {
          input_tokens: s.usage.input,
          input_tokens_details: { cached_tokens: 0 },
          output_tokens: s.usage.output,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: s.usage.input + s.usage.output,
        }
      : null,
    user: r.echo.user,
    metadata: r.echo.metadata,
  };
}
