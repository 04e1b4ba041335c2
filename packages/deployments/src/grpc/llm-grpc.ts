/**
 * protos/llm.proto's Llm service on an LLMServer: GenerateRequest → GenerationSpec (validated, fields
 * named as in the proto), results → GenerateResponse / GenerateStreamResponse, and API errors → the
 * core's typed errors so the gRPC proxy answers with the right status (INVALID_ARGUMENT, UNAUTHENTICATED,
 * NOT_FOUND, RESOURCE_EXHAUSTED with retry-after for rate limits, UNAVAILABLE).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BackPressureError,
  BadRequestError,
  NotFoundError,
  PayloadTooLargeError,
  UnauthenticatedError,
  UnavailableError,
  FlotillaError,
  type GrpcCallInfo,
} from '@flotilla/core';
import type { SamplingParams, TokenLogprob } from '@flotilla/engine';
import { InvalidParameterError, LLMApiError, type RateLimitError } from '../errors.js';
import { checkParams, collectGeneration, UsageTracker, type GenerationSpec, type ParamNames } from '../generation.js';
import type { GenerationContext, TokenTable } from '../handler-context.js';
import { checkModelName } from '../model-name.js';
import { tokenText } from '../openai/logprobs.js';
import { readMessages } from '../openai/params.js';
import { usageBody } from '../openai/responses.js';
import { BodyReader, type NumberRule } from '../validate.js';

export const LLM_PROTO_PATH = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../../protos/llm.proto',
);
/** passCallInfo: the methods get the call's metadata too, where clients put `authorization: Bearer KEY`. */
export const LLM_GRPC_SERVICE = {
  protoPath: LLM_PROTO_PATH,
  service: 'flotilla.llm.v1.Llm',
  methods: { Generate: 'grpcGenerate', GenerateStream: 'grpcGenerateStream', Embed: 'grpcEmbed' },
  passCallInfo: true,
  // A key may travel in the request (llm.proto's api_key) when the call has no authorization metadata.
  keyField: 'api_key',
};

/** GenerateRequest as proto-loader hands it over (keepCase; unset optionals are absent). */
export interface GrpcGenerateRequest {
  model?: string;
  prompt?: string;
  messages?: Array<{ role: string; content: string }>;
  prompt_token_ids?: number[];
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  n?: number;
  stop?: string[];
  seed?: number;
  logprobs?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  repetition_penalty?: number;
  ignore_eos?: boolean;
  api_key?: string;
  min_tokens?: number;
  /** Empty when unset (repeated / map fields have no presence). */
  stop_token_ids?: number[];
  logit_bias?: Record<string, number>;
}

const NAMES: ParamNames = {
  maxTokens: 'max_tokens',
  temperature: 'temperature',
  topP: 'top_p',
  topK: 'top_k',
  minP: 'min_p',
  n: 'n',
  stop: 'stop',
  seed: 'seed',
  logprobs: 'logprobs',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  repetitionPenalty: 'repetition_penalty',
  ignoreEos: 'ignore_eos',
  minTokens: 'min_tokens',
  stopTokenIds: 'stop_token_ids',
  logitBias: 'logit_bias',
};
const FIELDS: Array<[keyof GrpcGenerateRequest, keyof SamplingParams]> = [
  ['max_tokens', 'maxTokens'],
  ['temperature', 'temperature'],
  ['top_p', 'topP'],
  ['top_k', 'topK'],
  ['min_p', 'minP'],
  ['n', 'n'],
  ['seed', 'seed'],
  ['logprobs', 'logprobs'],
  ['presence_penalty', 'presencePenalty'],
  ['frequency_penalty', 'frequencyPenalty'],
  ['repetition_penalty', 'repetitionPenalty'],
  ['ignore_eos', 'ignoreEos'],
  ['min_tokens', 'minTokens'],
];

/**
 * OpenAI's own rules, as on HTTP (temperature <= 2); every other field is the engine's and is checked by
 * its validator (checkParams). Proto types already rule out wrong types.
 */
const RULES: Partial<Record<keyof GrpcGenerateRequest, NumberRule>> = {
  temperature: { min: 0, max: 2 },
};

export function grpcSpec(req: GrpcGenerateRequest, ctx: GenerationContext): GenerationSpec {
  checkModelName(req.model, ctx.model);
  const sources = [
    req.prompt ? 'prompt' : '',
    req.messages?.length ? 'messages' : '',
    req.prompt_token_ids?.length ? 'prompt_token_ids' : '',
  ].filter(Boolean);
  if (sources.length !== 1)
    throw new InvalidParameterError(
      'prompt',
      `give exactly one of prompt, messages, prompt_token_ids (got ${sources.join(', ') || 'none'})`,
    );
  const params: SamplingParams = {};
  const given = BodyReader.of(
    Object.fromEntries(FIELDS.filter(([f]) => req[f] !== undefined && req[f] !== null).map(([f]) => [f, req[f]])),
  );
  for (const [field, key] of FIELDS) {
    const rule = RULES[field];
    const v = rule ? given.number(field, rule) : given.raw(field);
    if (v !== undefined) (params as Record<string, unknown>)[key] = v;
  }
  if (req.stop?.length) params.stop = BodyReader.of({ stop: req.stop }).strings('stop', ctx.limits.maxStop)!;
  if (req.stop_token_ids?.length) params.stopTokenIds = req.stop_token_ids;
  if (req.logit_bias && Object.keys(req.logit_bias).length > 0) params.logitBias = req.logit_bias;
  checkParams(params, NAMES);
  // Messages pass the HTTP chat route's own validator (roles, content), so both protocols accept the same chats.
  const prompt: GenerationSpec['prompt'] = req.prompt
    ? { text: req.prompt }
    : req.messages?.length
      ? { messages: readMessages(BodyReader.of({ messages: req.messages })) }
      : { tokenIds: req.prompt_token_ids! };
  return { prompt, params, names: { ...NAMES, prompt: sources[0]! }, ...(req.prompt ? { defaultMaxTokens: 16 } : {}) };
}

export async function grpcGenerate(req: GrpcGenerateRequest, ctx: GenerationContext): Promise<unknown> {
  const spec = grpcSpec(req, ctx);
  const prepared = await ctx.backend.prepare(spec);
  await ctx.admit(prepared);
  const stream = ctx.backend.start(prepared, spec.names);
  const { samples, usage } = await collectGeneration(stream, prepared.params.n ?? 1);
  Object.assign(ctx.usage, usage);
  const tok = ctx.backend.tokens;
  return {
    id: `gen-${ctx.requestId}`,
    model: ctx.model.name,
    usage: usageBody(usage),
    choices: samples.map((s) => ({
      index: s.index,
      text: s.text,
      token_ids: s.tokenIds,
      finish_reason: s.finishReason === 'length' ? 'length' : 'stop',
      stop_reason: s.stopReason === null ? '' : String(s.stopReason),
      logprobs: s.logprobs.map((lp) => logprob(tok, lp)),
    })),
  };
}

export async function* grpcGenerateStream(req: GrpcGenerateRequest, ctx: GenerationContext): AsyncGenerator<unknown> {
  const spec = grpcSpec(req, ctx);
  const prepared = await ctx.backend.prepare(spec);
  await ctx.admit(prepared);
  const stream = ctx.backend.start(prepared, spec.names);
  const tok = ctx.backend.tokens;
  const usage = new UsageTracker();
  const id = `gen-${ctx.requestId}`;
  let pending: Record<string, unknown> | null = null;
  // Each message is held back by one so that the last one can carry the usage.
  for await (const out of stream) {
    usage.add(out);
    if (pending) yield pending;
    pending = {
      id,
      index: out.index,
      text: out.text,
      token_ids: out.tokenIds,
      finished: out.finished,
      finish_reason: out.finished ? (out.finishReason === 'length' ? 'length' : 'stop') : '',
      logprobs: (out.logprobs ?? []).map((lp) => logprob(tok, lp)),
    };
  }
  ctx.usage.promptTokens = usage.promptTokens;
  ctx.usage.completionTokens = usage.completionTokens;
  if (pending) yield { ...pending, usage: usageBody(ctx.usage) };
}

function logprob(tok: TokenTable, lp: TokenLogprob) {
  return {
    token_id: lp.tokenId,
    token: tokenText(tok, lp.tokenId),
    logprob: lp.logprob,
    top: lp.top.map((t) => ({ token_id: t.tokenId, token: tokenText(tok, t.tokenId), logprob: t.logprob })),
  };
}

/** API errors as the core's typed errors (what the gRPC proxy maps to status codes); the stable code stays in the message and data. */
export function toCoreError(err: unknown): unknown {
  if (!(err instanceof LLMApiError)) return err;
  const message = `[${err.code}] ${err.message}`;
  const data = { llmCode: err.code, param: err.param };
  switch (err.status) {
    case 400:
      return new BadRequestError(message, data);
    case 401:
      return new UnauthenticatedError(message, data);
    case 404:
      return new NotFoundError(message, data);
    case 413:
      return new PayloadTooLargeError(message, data);
    case 429:
      return new BackPressureError(message, { ...data, retryAfterS: (err as RateLimitError).retryAfterS });
    case 503:
      return new UnavailableError(message, data);
    default:
      return new FlotillaError(message, data);
  }
}

/** The Authorization header a gRPC call carries: its metadata's, else the request's api_key field. */
export function grpcAuthHeaders(
  request: GrpcGenerateRequest | undefined,
  callInfo: GrpcCallInfo | undefined,
): Record<string, string> {
  const fromMetadata = callInfo?.metadata?.authorization;
  if (fromMetadata) return { authorization: fromMetadata };
  return request?.api_key ? { authorization: `Bearer ${request.api_key}` } : {};
}

/** The client's address without its port (one rate-limit key per client when there are no API keys). */
export function grpcClientOf(callInfo: GrpcCallInfo | undefined): string {
  const peer = callInfo?.peer;
  if (!peer) return 'grpc';
  const m = /^(?:ipv4:|ipv6:)?\[?([^\]]*?)\]?(?::\d+)?$/.exec(peer);
  return `grpc-${m?.[1] || peer}`;
}
