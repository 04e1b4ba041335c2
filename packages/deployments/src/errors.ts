/**
 * Typed errors of the LLM deployments. Each has a stable `code` (match on it, not on the message), the
 * HTTP status it answers with, and the OpenAI error `type`; `param` names the offending request field in
 * the spelling of the API that received it (snake_case for OpenAI and TGI).
 *
 * LLMServer raises and renders them inside its replica (OpenAI, TGI or gRPC shape); other deployments
 * that use the same front-end code (or call LLMServer's methods through a handle) get them across thread
 * and process boundaries as the same classes, with code, param, status and type: every class is
 * registered with core's wire registry when this module loads (bottom of this file).
 */
import { registerErrorClasses } from '@flotilla/core';

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'rate_limit_error'
  | 'not_found_error'
  | 'server_error'
  | 'service_unavailable';

export class LLMApiError extends Error {
  readonly code: string = 'E_LLM_API';
  readonly status: number = 500;
  readonly type: ApiErrorType = 'server_error';
  /** The request field at fault, if one is. */
  readonly param: string | null;
  constructor(message: string, param: string | null = null) {
    super(message);
    this.name = new.target.name;
    this.param = param;
  }
}

/** A request field is missing, of the wrong type, out of range or unknown (400). */
export class InvalidParameterError extends LLMApiError {
  override readonly code: string = 'E_INVALID_PARAMETER';
  override readonly status: number = 400;
  override readonly type: ApiErrorType = 'invalid_request_error';
  constructor(param: string, problem: string) {
    super(`${param}: ${problem}`, param);
  }
}

/** The prompt (or prompt + max_tokens) exceeds a configured limit or the model's context (400). */
export class ContextLimitError extends InvalidParameterError {
  override readonly code: string = 'E_CONTEXT_LIMIT';
}

/** The body is not JSON, not an object, or the method/path is wrong for the route (400). */
export class MalformedRequestError extends LLMApiError {
  override readonly code: string = 'E_MALFORMED_REQUEST';
  override readonly status: number = 400;
  override readonly type: ApiErrorType = 'invalid_request_error';
}

/**
 * The body was sent as JSON but does not parse (400 on every route: OpenAI answers 400, and so does TGI,
 * whose router rejects a JSON syntax error with 400 and a body of the wrong shape with 422).
 */
export class InvalidJsonError extends MalformedRequestError {
  override readonly code: string = 'E_INVALID_JSON';
}

/** The path exists but not for this HTTP method (405). */
export class MethodNotAllowedError extends LLMApiError {
  override readonly code: string = 'E_METHOD_NOT_ALLOWED';
  override readonly status: number = 405;
  override readonly type: ApiErrorType = 'invalid_request_error';
}

/** No or a wrong API key (401). */
export class AuthenticationError extends LLMApiError {
  override readonly code: string = 'E_INVALID_API_KEY';
  override readonly status: number = 401;
  override readonly type: ApiErrorType = 'authentication_error';
}

/** A per-key request or token bucket is empty (429); retry after `retryAfterS`. */
export class RateLimitError extends LLMApiError {
  override readonly code: string = 'E_RATE_LIMITED';
  override readonly status: number = 429;
  override readonly type: ApiErrorType = 'rate_limit_error';
  constructor(
    message: string,
    readonly retryAfterS: number,
  ) {
    super(message);
  }
}

/** The request body is larger than limits.maxBodyBytes (413). */
export class RequestTooLargeError extends LLMApiError {
  override readonly code: string = 'E_REQUEST_TOO_LARGE';
  override readonly status: number = 413;
  override readonly type: ApiErrorType = 'invalid_request_error';
}

/** The route does not exist (404), or `model` names a model this server does not serve (404). */
export class RouteNotFoundError extends LLMApiError {
  override readonly code: string = 'E_NOT_FOUND';
  override readonly status: number = 404;
  override readonly type: ApiErrorType = 'not_found_error';
}

export class ModelNotFoundError extends RouteNotFoundError {
  override readonly code: string = 'E_MODEL_NOT_FOUND';
}

/** The model is still loading, or failed to load (503). */
export class ModelUnavailableError extends LLMApiError {
  override readonly code: string = 'E_MODEL_UNAVAILABLE';
  override readonly status: number = 503;
  override readonly type: ApiErrorType = 'service_unavailable';
}

/** The shared RateLimiter deployment (LLMServer's second argument) cannot be reached (503): refused, not let through. */
export class RateLimiterUnavailableError extends LLMApiError {
  override readonly code: string = 'E_RATE_LIMITER_UNAVAILABLE';
  override readonly status: number = 503;
  override readonly type: ApiErrorType = 'service_unavailable';
}

/**
 * The route's task is not served by this server: generation routes on a server started with task 'embed'
 * (vLLM's --task embed), /v1/embeddings on one started with task 'generate' (400).
 */
export class UnsupportedTaskError extends LLMApiError {
  override readonly code: string = 'E_UNSUPPORTED_TASK';
  override readonly status: number = 400;
  override readonly type: ApiErrorType = 'invalid_request_error';
}

/** The server's own options are wrong (thrown from the constructor, so the deployment fails to start). */
export class LLMServerConfigError extends Error {
  readonly code: string = 'E_LLM_SERVER_CONFIG';
  constructor(message: string) {
    super(message);
    this.name = 'LLMServerConfigError';
  }
}

/** OpenAI's wire `code` for each of our codes (what its clients and SDKs look at). */
const OPENAI_CODES: Record<string, string> = {
  E_INVALID_PARAMETER: 'invalid_parameter',
  E_CONTEXT_LIMIT: 'context_length_exceeded',
  E_MALFORMED_REQUEST: 'invalid_request',
  E_INVALID_JSON: 'invalid_json',
  E_METHOD_NOT_ALLOWED: 'method_not_allowed',
  E_INVALID_API_KEY: 'invalid_api_key',
  E_RATE_LIMITED: 'rate_limit_exceeded',
  E_REQUEST_TOO_LARGE: 'request_too_large',
  E_NOT_FOUND: 'not_found',
  E_MODEL_NOT_FOUND: 'model_not_found',
  E_MODEL_UNAVAILABLE: 'model_unavailable',
  E_RATE_LIMITER_UNAVAILABLE: 'rate_limiter_unavailable',
  E_PII_BLOCKED: 'pii_blocked',
  E_CONTENT_BLOCKED: 'content_filter',
  E_UNSUPPORTED_TASK: 'unsupported_task',
};

export function openAiCodeOf(err: LLMApiError): string {
  return OPENAI_CODES[err.code] ?? 'internal_error';
}

registerErrorClasses({
  LLMApiError,
  InvalidParameterError,
  ContextLimitError,
  MalformedRequestError,
  InvalidJsonError,
  MethodNotAllowedError,
  AuthenticationError,
  RateLimitError,
  RequestTooLargeError,
  RouteNotFoundError,
  ModelNotFoundError,
  ModelUnavailableError,
  RateLimiterUnavailableError,
  UnsupportedTaskError,
  LLMServerConfigError,
});
