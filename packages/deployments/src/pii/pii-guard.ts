/**
 * PiiGuard: the PII filter as a stage of any generation graph that speaks protos/llm.proto's shape
 * (LLMServer, HybridRouter, ResponseCache, SpeculativePipeline fronts, a user's own class): it checks
 * the prompt (`prompt`, each message's `content`) before the request goes downstream, and the generated
 * text on the way back — whole replies and streams, where values split across chunks are caught by a
 * StreamRedactor per choice. Served over gRPC as the Llm service itself (`static grpcServices`), and
 * callable through handles with the same method names, so it can sit in front of any of them:
 *
 *   @deployment() class Guard extends PiiGuard {}
 *   export const app = Guard.bind(Model.bind({ model }), { mode: 'block' });
 *
 * Counts per kind, place and mode are in `flotilla_pii_detections_total` (collectMetrics()); the values
 * themselves are never logged or counted. LLMServer has the same filter built in (its `pii` option).
 */
import { BadRequestError, type DeploymentHandle, type GrpcCallInfo } from '@flotilla/core';
import { Counter, Registry } from 'prom-client';
import { LLM_GRPC_SERVICE } from '../grpc/llm-grpc.js';
import { PiiBlockedError } from './pii-errors.js';
import { PiiFilter, type PiiOptions } from './pii-filter.js';
import { StreamRedactor } from './stream-redactor.js';

export interface PiiGuardOptions extends PiiOptions {
  /** Downstream unary method. Default 'grpcGenerate'. */
  method?: string;
  /** Downstream streaming method. Default 'grpcGenerateStream'. */
  streamMethod?: string;
}

interface Choice {
  text?: string;
  finish_reason?: string;
}
interface StreamChunk {
  index?: number;
  text?: string;
  finished?: boolean;
  finish_reason?: string;
}

/** Registers the detections counter in `registry` and returns the filter's hook that feeds it. */
export function piiDetectionsCounter(registry: Registry): Counter<'kind' | 'where' | 'mode'> {
  return new Counter({
    name: 'flotilla_pii_detections_total',
    help: 'Personal data values found, by kind, place (prompt or output) and mode (redact, block, log).',
    labelNames: ['kind', 'where', 'mode'],
    registers: [registry],
  });
}

export class PiiGuard {
  static grpcServices = [LLM_GRPC_SERVICE];

  private readonly registry = new Registry();
  private readonly filter: PiiFilter;

  constructor(
    private readonly downstream: DeploymentHandle,
    private readonly options: PiiGuardOptions = {},
  ) {
    const detections = piiDetectionsCounter(this.registry);
    this.filter = new PiiFilter(options, (kind, where, n, mode) => detections.inc({ kind, where, mode }, n));
  }

  async grpcGenerate(request: Record<string, unknown>, callInfo?: GrpcCallInfo): Promise<unknown> {
    const checked = this.#checkRequest(request);
    const reply = (await this.downstream.remote(this.options.method ?? 'grpcGenerate', [
      checked,
      ...(callInfo ? [callInfo] : []),
    ])) as { choices?: Choice[] };
    if (!this.filter.options.outputs || !Array.isArray(reply?.choices)) return reply;
    return { ...reply, choices: reply.choices.map((c) => this.#checkChoice(c)) };
  }

  async *grpcGenerateStream(request: Record<string, unknown>, callInfo?: GrpcCallInfo): AsyncGenerator<unknown> {
    const checked = this.#checkRequest(request);
    const stream = this.downstream.stream[this.options.streamMethod ?? 'grpcGenerateStream']!(
      checked,
      ...(callInfo ? [callInfo] : []),
    ) as AsyncIterable<StreamChunk>;
    if (!this.filter.options.outputs) {
      yield* stream;
      return;
    }
    const redactors = new Map<number, StreamRedactor>();
    for await (const chunk of stream) {
      const index = chunk.index ?? 0;
      let r = redactors.get(index);
      if (!r) redactors.set(index, (r = new StreamRedactor(this.filter)));
      if (r.blocked) continue; // that choice already ended with 'content_filter'
      let text = r.push(chunk.text ?? '');
      if (r.blocked) {
        yield { ...chunk, text, token_ids: [], finished: true, finish_reason: 'content_filter' };
        continue;
      }
      if (chunk.finished) {
        text += r.end();
        if (r.blocked) {
          yield { ...chunk, text, finished: true, finish_reason: 'content_filter' };
          continue;
        }
      }
      yield { ...chunk, text };
    }
  }

  /** Detections for a /metrics scrape (prom-client JSON, as every replica's collectMetrics). */
  async collectMetrics(): Promise<unknown[]> {
    return this.registry.getMetricsAsJSON();
  }

  #checkRequest(request: Record<string, unknown>): Record<string, unknown> {
    if (typeof request !== 'object' || request === null) throw new BadRequestError('the request must be an object');
    try {
      const out = { ...request };
      if (typeof out.prompt === 'string') out.prompt = this.filter.checkPrompt(out.prompt, 'prompt');
      if (Array.isArray(out.messages)) {
        out.messages = out.messages.map((m: { content?: unknown }) =>
          typeof m?.content === 'string' ? { ...m, content: this.filter.checkPrompt(m.content, 'messages') } : m,
        );
      }
      return out;
    } catch (err) {
      // A refusal crosses to the caller as core's 400 (INVALID_ARGUMENT on gRPC) with the kinds, no values.
      if (err instanceof PiiBlockedError) {
        throw new BadRequestError(err.message, { code: err.code, param: err.param, kinds: err.kinds });
      }
      throw err;
    }
  }

  #checkChoice(choice: Choice): Choice {
    if (typeof choice?.text !== 'string') return choice;
    const r = new StreamRedactor(this.filter);
    const text = r.push(choice.text) + r.end();
    return r.blocked ? { ...choice, text, finish_reason: 'content_filter' } : { ...choice, text };
  }
}
