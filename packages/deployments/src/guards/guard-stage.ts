/**
 * A guard stage: a deployment in front of a generation graph that checks prompts before they go
 * downstream and filters generated text on the way back. Subclasses say what "check" and "filter"
 * mean (PiiGuard: personal data; SafetyGuard: a classifier's verdict); this class carries them over
 * every way a graph is called:
 *
 * - HTTP: `handleHttp` forwards each request to the downstream's `handleHttp` (an LLMServer, or another
 *   guard), so the stage serves the same OpenAI and TGI API; prompt fields are checked in the body and
 *   generated text is filtered in JSON replies and in server-sent events (http-rewrite.ts);
 * - gRPC (protos/llm.proto, `static grpcServices`) and handles: `grpcGenerate` / `grpcGenerateStream`
 *   with the request's `prompt` and `messages`, the replies' `choices[].text` and streamed `text`.
 *
 * A refused prompt is answered in the API's own shape (OpenAI 400, TGI 422, gRPC INVALID_ARGUMENT via
 * core's BadRequestError carrying code, param and details); blocked output ends its choice with
 * finish_reason 'content_filter' (TGI: an error event, it has no such reason).
 */
import { BadRequestError, type DeploymentHandle, type GrpcCallInfo, type HttpRequestLike } from '@flotilla/core';
import { LLMApiError } from '../errors.js';
import { LLM_GRPC_SERVICE } from '../grpc/llm-grpc.js';
import type { HttpChunk } from '../handler-context.js';
import { openAiError } from '../openai/routes.js';
import { tgiError } from '../tgi/routes.js';
import { apiOf, checkRequestBody, ResponseRewriter } from './http-rewrite.js';
import type { OutputFilter } from './output-filter.js';

export interface GuardStageOptions {
  /** Downstream unary method for gRPC-shaped calls. Default 'grpcGenerate'. */
  method?: string;
  /** Downstream streaming method. Default 'grpcGenerateStream'. */
  streamMethod?: string;
}

interface StreamChunk {
  index?: number;
  text?: string;
  finished?: boolean;
  finish_reason?: string;
}

export abstract class GuardStage {
  static grpcServices = [LLM_GRPC_SERVICE];
  /** Malformed JSON is forwarded as it came, so the downstream answers it in its own API's shape. */
  static handlesMalformedJson = true;

  constructor(
    protected readonly downstream: DeploymentHandle,
    private readonly stage: GuardStageOptions = {},
  ) {}

  /** The prompt text to send downstream, or a thrown LLMApiError (e.g. 400) to refuse the request. */
  protected abstract checkPrompt(text: string, param: string): Promise<string>;
  /** A filter for one choice's generated text; null to pass outputs unchanged. */
  protected abstract outputFilter(): OutputFilter | null;

  async *handleHttp(req: HttpRequestLike): AsyncGenerator<HttpChunk> {
    const api = req.bodyError === undefined ? apiOf(req.method, req.path) : 'none';
    let body: unknown;
    try {
      body = await checkRequestBody(api, req.body, (text, param) => this.checkPrompt(text, param));
    } catch (err) {
      yield api === 'tgi' ? tgiError(err) : openAiError(err);
      return;
    }
    const newFilter = () => this.outputFilter();
    const rewriter = api !== 'none' && newFilter() ? new ResponseRewriter(api, () => newFilter()!) : null;
    let head = true;
    for await (const chunk of this.downstream.stream.handleHttp!({ ...req, body }) as AsyncIterable<HttpChunk>) {
      if (!rewriter) {
        yield chunk;
        continue;
      }
      if (head && typeof chunk !== 'string') {
        head = false;
        if (chunk.status !== 200 || chunk.body === undefined) {
          yield chunk;
          continue;
        }
        const r = await rewriter.rewriteBody(chunk.body);
        yield { ...chunk, status: r.status ?? chunk.status, body: r.body };
        continue;
      }
      head = false;
      if (typeof chunk === 'string') {
        const out = await rewriter.rewriteEvent(chunk);
        if (out !== '') yield out;
      } else yield chunk;
    }
  }

  async grpcGenerate(request: Record<string, unknown>, callInfo?: GrpcCallInfo): Promise<unknown> {
    const checked = await this.#checkGrpcRequest(request);
    const reply = (await this.downstream.remote(this.stage.method ?? 'grpcGenerate', [
      checked,
      ...(callInfo ? [callInfo] : []),
    ])) as { choices?: Array<{ text?: string; finish_reason?: string }> };
    if (!Array.isArray(reply?.choices) || !this.outputFilter()) return reply;
    const choices = await Promise.all(
      reply.choices.map(async (c) => {
        const f = this.outputFilter();
        if (!f || typeof c?.text !== 'string') return c;
        const text = (await f.push(c.text)) + (f.blocked ? '' : await f.end());
        return f.blocked ? { ...c, text, finish_reason: 'content_filter' } : { ...c, text };
      }),
    );
    return { ...reply, choices };
  }

  async *grpcGenerateStream(request: Record<string, unknown>, callInfo?: GrpcCallInfo): AsyncGenerator<unknown> {
    const checked = await this.#checkGrpcRequest(request);
    const stream = this.downstream.stream[this.stage.streamMethod ?? 'grpcGenerateStream']!(
      checked,
      ...(callInfo ? [callInfo] : []),
    ) as AsyncIterable<StreamChunk>;
    const filters = new Map<number, OutputFilter | null>();
    for await (const chunk of stream) {
      const index = chunk.index ?? 0;
      if (!filters.has(index)) filters.set(index, this.outputFilter());
      const f = filters.get(index);
      if (!f) {
        yield chunk;
        continue;
      }
      if (f.blocked) continue; // that choice already ended with 'content_filter'
      let text = await f.push(chunk.text ?? '');
      if (!f.blocked && chunk.finished) text += await f.end();
      if (f.blocked) yield { ...chunk, text, token_ids: [], finished: true, finish_reason: 'content_filter' };
      else yield { ...chunk, text };
    }
  }

  async #checkGrpcRequest(request: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (typeof request !== 'object' || request === null) throw new BadRequestError('the request must be an object');
    try {
      const out = { ...request };
      if (typeof out.prompt === 'string') out.prompt = await this.checkPrompt(out.prompt, 'prompt');
      if (Array.isArray(out.messages)) {
        out.messages = await Promise.all(
          out.messages.map(async (m: { content?: unknown }) =>
            typeof m?.content === 'string' ? { ...m, content: await this.checkPrompt(m.content, 'messages') } : m,
          ),
        );
      }
      return out;
    } catch (err) {
      // A refusal crosses to the caller as core's 400 (INVALID_ARGUMENT on gRPC) with its code and details.
      if (err instanceof LLMApiError) {
        const { code, param, status } = err;
        const details = Object.fromEntries(
          Object.entries(err).filter(([k]) => !['code', 'param', 'status', 'type'].includes(k)),
        );
        throw new BadRequestError(err.message, { code, param, status, ...details });
      }
      throw err;
    }
  }
}
