/**
 * The Responses API's `input` → chat messages: a text (one user message), or a list of items —
 * messages (text or input_text/output_text parts), `function_call` items (an earlier assistant turn;
 * consecutive ones are one turn with several calls) and `function_call_output` items (tool messages).
 *
 * Separate from responses-request.ts, which reads the rest of the body: the item shapes and their
 * mapping onto the chat template's roles are their own concern.
 */
import type { ChatMessage } from '@flotilla/engine';
import { InvalidParameterError } from '../errors.js';
import { BodyReader, describe } from '../validate.js';

const ROLES = new Set(['user', 'assistant', 'system', 'developer']);

/** `input`: a text, or message / function_call / function_call_output items → chat messages. */
export function readInput(v: unknown): ChatMessage[] {
  if (v === undefined) throw new InvalidParameterError('input', 'is required');
  if (typeof v === 'string') {
    if (v.length === 0) throw new InvalidParameterError('input', 'must not be empty');
    return [{ role: 'user', content: v }];
  }
  if (!Array.isArray(v) || v.length === 0)
    throw new InvalidParameterError('input', 'must be a string or a non-empty array of input items');
  const out: ChatMessage[] = [];
  v.forEach((item, i) => {
    const where = `input[${i}]`;
    const ir = BodyReader.of(item, where, `${where}.`);
    const type = ir.string('type') ?? 'message';
    if (type === 'message') {
      const role = ir.string('role');
      if (role === undefined || !ROLES.has(role))
        throw new InvalidParameterError(`${where}.role`, `must be one of ${[...ROLES].join(', ')}`);
      const content = readContent(ir.raw('content'), `${where}.content`);
      ir.string('id');
      ir.string('status');
      ir.rejectUnknown();
      out.push({ role, content });
    } else if (type === 'function_call') {
      const callId = ir.string('call_id');
      const name = ir.string('name');
      const args = ir.string('arguments') ?? '{}';
      ir.string('id');
      ir.string('status');
      ir.rejectUnknown();
      if (!callId) throw new InvalidParameterError(`${where}.call_id`, 'is required');
      if (!name) throw new InvalidParameterError(`${where}.name`, 'is required');
      const call = { id: callId, type: 'function' as const, function: { name, arguments: args } };
      const last = out.at(-1);
      // consecutive calls are one assistant turn with several tool calls
      if (last?.role === 'assistant' && last.tool_calls && last.content === null) last.tool_calls.push(call);
      else out.push({ role: 'assistant', content: null, tool_calls: [call] });
    } else if (type === 'function_call_output') {
      const callId = ir.string('call_id');
      const output = ir.raw('output');
      ir.string('id');
      ir.string('status');
      ir.rejectUnknown();
      if (!callId) throw new InvalidParameterError(`${where}.call_id`, 'is required');
      out.push({ role: 'tool', tool_call_id: callId, content: readContent(output, `${where}.output`) });
    } else {
      throw new InvalidParameterError(
        `${where}.type`,
        `items of type ${describe(type)} are not supported; use message, function_call or function_call_output`,
      );
    }
  });
  return out;
}

/** A message's content: a string, or input_text / output_text parts (joined). */
function readContent(v: unknown, where: string): string {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) throw new InvalidParameterError(where, 'must be a string or an array of text parts');
  return v
    .map((part, j) => {
      const p = part as { type?: unknown; text?: unknown } | null;
      if (!p || (p.type !== 'input_text' && p.type !== 'output_text') || typeof p.text !== 'string')
        throw new InvalidParameterError(
          `${where}[${j}]`,
          `only input_text and output_text parts are supported, got ${describe((p as { type?: unknown } | null)?.type)}`,
        );
      return p.text;
    })
    .join('');
}
