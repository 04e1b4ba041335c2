/**
 * A guard stage: a deployment in front of a generation graph that checks prompts before they go
 * downstream and filters generated text on the way back. Subclasses say what "check" and "filter"
 * mean (PiiGuard: personal data; SafetyGuard: a classifier's verdict); guard-flow.ts carries them over
 * every way a graph is called:
 *
 * - HTTP: `handleHttp` forwards each request to the downstream's `handleHttp` (an LLMServer, or another
 *   guard), so the stage serves the same OpenAI and TGI API;
 * - gRPC (protos/llm.proto, `static grpcServices`) and handles: `grpcGenerate` / `grpcGenerateStream`.
 *
 * A refused prompt is answered in the API's own shape (OpenAI 400, TGI 422, gRPC INVALID_ARGUMENT);
 * blocked output ends its choice with finish_reason 'content_filter' (TGI: an error event).
 */
import type { DeploymentHandle, GrpcCallInfo, HttpRequestLike } from '@flotilla/core';
import { LLM_GRPC_SERVICE } from '../grpc/llm-grpc.js';
import type { HttpChunk } from '../handler-context.js';
import { type GuardHooks, guardGrpcReply, guardGrpcRequest, guardGrpcStream, guardHttp } from './guard-flow.js';
import type { OutputFilter } from './output-filter.js';

export interface GuardStageOptions {
  /** Downstream unary method for llm.proto-shaped calls. Default 'grpcGenerate'. */
  method?: string;
  /** Downstream streaming method. Default 'grpcGenerateStream'. */
  streamMethod?: string;
}

export abstract class GuardStage {
  static grpcServices = [LLM_GRPC_SERVICE];
  /** Malformed JSON is forwarded as it came, so the downstream answers it in its own API's shape. */
  static handlesMalformedJson = true;

  readonly #hooks: GuardHooks = {
    checkPrompt: (text, param) => this.checkPrompt(text, param),
    outputFilter: () => this.outputFilter(),
  };

  constructor(
    protected readonly downstream: DeploymentHandle,
    private readonly stage: GuardStageOptions = {},
  ) {}

  /** The prompt text to send downstream, or a thrown LLMApiError (e.g. 400) to refuse the request. */
  protected abstract checkPrompt(text: string, param: string): Promise<string>;
  /** A filter for one choice's generated text; null to pass outputs unchanged. */
  protected abstract outputFilter(): OutputFilter | null;

  // An async generator method itself (not a function returning one): the runtime tells streams by that.
  async *handleHttp(req: HttpRequestLike): AsyncGenerator<HttpChunk> {
    yield* guardHttp(req, this.#hooks, (r) => this.downstream.stream.handleHttp!(r) as AsyncIterable<HttpChunk>);
  }

  async grpcGenerate(request: Record<string, unknown>, callInfo?: GrpcCallInfo): Promise<unknown> {
    const checked = await guardGrpcRequest(request, this.#hooks);
    const reply = await this.downstream.remote(this.stage.method ?? 'grpcGenerate', [
      checked,
      ...(callInfo ? [callInfo] : []),
    ]);
    return guardGrpcReply(reply, this.#hooks);
  }

  async *grpcGenerateStream(request: Record<string, unknown>, callInfo?: GrpcCallInfo): AsyncGenerator<unknown> {
    const checked = await guardGrpcRequest(request, this.#hooks);
    const stream = this.downstream.stream[this.stage.streamMethod ?? 'grpcGenerateStream']!(
      checked,
      ...(callInfo ? [callInfo] : []),
    ) as AsyncIterable<unknown>;
    yield* guardGrpcStream(stream, this.#hooks);
  }
}
