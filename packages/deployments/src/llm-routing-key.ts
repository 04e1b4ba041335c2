/**
 * LLMServer's routing key for `routing: 'prefix-aware'` (see DeploymentOptions.routing in core): the
 * first ROUTING_KEY_CHARS characters of a generation request's prompt, so that requests sharing a prompt
 * prefix (a system prompt, few-shot examples, a conversation so far) go to the replica whose prefix cache
 * likely holds it. Requests whose prompts differ within those characters spread over the replicas.
 *
 * It runs in the callers' routers (the controller's process), on the call as the proxy or handle sends
 * it, before the replica validates anything: so it takes any shape without throwing, and reads only the
 * prompt. Keys by protocol (each cut to `chars` characters):
 * - OpenAI POST /v1/completions: `prompt` (a string, or a one-string array); token ids as `ids:1,2,3`.
 * - OpenAI POST /v1/chat/completions: the messages as `role\ncontent\n` in order (text parts joined):
 *   not the chat template's rendering (that needs the tokenizer, which only replicas load), but the same
 *   messages give the same key, and a conversation's later turns share its earlier ones' key.
 * - TGI POST /generate, /generate_stream and /: `inputs` (the same text gives the same key as OpenAI's).
 * - gRPC Generate / GenerateStream (protos/llm.proto; handle calls of grpcGenerate too): `prompt`,
 *   `messages` or `prompt_token_ids`, as above.
 * Anything else (GET routes, /tokenize, other methods, an unreadable body): no key, so power of two choices.
 */

/** Leading characters of the prompt text that make up the key (some 50–100 tokens of English text with a Llama-sized vocabulary). */
export const ROUTING_KEY_CHARS = 256;

type Rec = Record<string, unknown>;
const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The routing key of a call of `method` with `args` (LLMServer's methods), or undefined for none. */
export function llmRoutingKey(
  method: string,
  args: readonly unknown[],
  chars: number = ROUTING_KEY_CHARS,
): string | undefined {
  const a = args[0];
  if (!isRecord(a) || !(chars > 0)) return undefined;
  if (method === 'handleHttp') return httpKey(a, chars);
  if (method === 'grpcGenerate' || method === 'grpcGenerateStream') return grpcKey(a, chars);
  return undefined;
}

function httpKey(req: Rec, chars: number): string | undefined {
  if (req.method !== 'POST' || typeof req.path !== 'string' || !isRecord(req.body)) return undefined;
  const body = req.body;
  switch (req.path.replace(/\/+$/, '') || '/') {
    case '/v1/completions':
      return completionPromptKey(body.prompt, chars);
    case '/v1/chat/completions':
      return messagesKey(body.messages, chars);
    case '/generate':
    case '/generate_stream':
    case '/':
      return textKey(body.inputs, chars);
    default:
      return undefined;
  }
}

function grpcKey(request: Rec, chars: number): string | undefined {
  return (
    textKey(request.prompt, chars) ?? messagesKey(request.messages, chars) ?? idsKey(request.prompt_token_ids, chars)
  );
}

/** OpenAI's prompt: a string, [string], token ids or [token ids]. */
function completionPromptKey(prompt: unknown, chars: number): string | undefined {
  if (typeof prompt === 'string') return textKey(prompt, chars);
  if (!Array.isArray(prompt) || prompt.length === 0) return undefined;
  const first = prompt[0];
  if (typeof first === 'string') return textKey(first, chars);
  if (Array.isArray(first)) return idsKey(first, chars);
  return idsKey(prompt, chars);
}

function textKey(text: unknown, chars: number): string | undefined {
  return typeof text === 'string' && text.length > 0 ? text.slice(0, chars) : undefined;
}

function idsKey(ids: unknown, chars: number): string | undefined {
  if (!Array.isArray(ids) || ids.length === 0) return undefined;
  let key = 'ids:';
  for (let i = 0; i < ids.length && key.length < chars; i++) {
    if (typeof ids[i] !== 'number') return undefined;
    key += i === 0 ? String(ids[i]) : `,${ids[i]}`;
  }
  return key.slice(0, chars);
}

/** Messages as `role\ncontent\n`, read only as far as the key reaches. */
function messagesKey(messages: unknown, chars: number): string | undefined {
  if (!Array.isArray(messages) || messages.length === 0) return undefined;
  let key = '';
  for (const m of messages) {
    if (key.length >= chars) break;
    if (!isRecord(m)) return undefined;
    key += `${typeof m.role === 'string' ? m.role : ''}\n${contentText(m.content, chars - key.length)}\n`;
  }
  return key.slice(0, chars);
}

/** A message's text: a string, or its text parts joined (up to `room` characters). */
function contentText(content: unknown, room: number): string {
  if (typeof content === 'string') return content.slice(0, room);
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    if (text.length >= room) break;
    if (isRecord(part) && typeof part.text === 'string') text += part.text;
  }
  return text.slice(0, room);
}
