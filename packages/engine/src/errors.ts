/**
 * Typed errors of the engine. Each class has a stable `code` that callers (and the wire format of
 * packages/core, `{ name, code, message, stack, data, fields }`) can match on. Every class is registered
 * with core's wire registry when this module loads (`registerWireErrors` below), so an engine error
 * thrown in a replica thread or process reaches the caller as the same class, with its code and fields
 * (`param`, `problem`, `file`, ...).
 *
 * To add an error: subclass EngineError, override `code` with a new 'E_…' literal, and list the class
 * in `engineErrorClasses` or `engineRequestErrorClasses` (or register it where it is defined).
 */
export class EngineError extends Error {
  readonly code: string = 'E_ENGINE';
  /**
   * The HTTP status a generic proxy answers with when this error reaches it (400s are the request's
   * fault). Plain data, so it survives the wire; the LLM servers map errors to their APIs themselves.
   */
  readonly status: number = 500;
  /** Extra machine-readable detail (the file at fault, the tensor name, …). */
  data?: Record<string, unknown>;
  constructor(message: string, data?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    if (data) this.data = data;
  }
}

/**
 * A model file (checkpoint, safetensors, GGUF, config or tokenizer) is missing, truncated, has a wrong
 * magic number, inconsistent shapes or a missing tensor. The message reads "FILE: PROBLEM".
 */
export class ModelFormatError extends EngineError {
  override readonly code: string = 'E_MODEL_FORMAT';
  readonly file: string;
  readonly problem: string;
  constructor(file: string, problem: string, data?: Record<string, unknown>) {
    super(`${file}: ${problem}`, { file, ...data });
    this.file = file;
    this.problem = problem;
  }
}

/**
 * A well-formed model file asks for something the engine cannot run exactly (a tensor type such as
 * Q4_K, attention biases, RoPE scaling, another architecture). Rejected instead of producing wrong output.
 * A ModelFormatError subclass so `instanceof ModelFormatError` catches every bad-model case.
 */
export class UnsupportedModelError extends ModelFormatError {
  override readonly code: string = 'E_MODEL_UNSUPPORTED';
  constructor(file: string, what: string, data?: Record<string, unknown>) {
    super(file, `unsupported: ${what}`, data);
  }
}

export const engineErrorClasses = { EngineError, ModelFormatError, UnsupportedModelError } as const;

/**
 * A sampling parameter is out of range, of the wrong type, or unknown. `param` names it as the
 * SamplingParams field (camelCase), so an API layer can map it back to its own spelling.
 */
export class SamplingParamsError extends EngineError {
  override readonly code: string = 'E_SAMPLING_PARAMS';
  override readonly status: number = 400;
  readonly param: string;
  /** The message without the leading "param: ", so an API layer can put its own name for `param` first. */
  readonly problem: string;
  constructor(param: string, problem: string, data?: Record<string, unknown>) {
    super(`${param}: ${problem}`, { param, ...data });
    this.param = param;
    this.problem = problem;
  }
}

/**
 * The prompt plus maxTokens does not fit the model's context (maxModelLen); `param` is 'maxTokens' or
 * 'prompt', and data has promptLen, maxModelLen (and maxTokens).
 */
export class ContextLengthError extends SamplingParamsError {
  override readonly code: string = 'E_CONTEXT_LENGTH';
}

/** One request could never fit the KV pool even alone (prompt + maxTokens needs more blocks than exist). */
export class KvCapacityError extends EngineError {
  override readonly code: string = 'E_KV_CAPACITY';
  override readonly status: number = 400;
  /** The parameter to lower (a prompt too long for the pool alone fails its context check first). */
  readonly param: string = 'maxTokens';
}

/**
 * The prompt is empty, holds token ids outside the vocabulary, or chat messages are malformed. Prompt
 * problems read "prompt: PROBLEM"; chat-message problems name the message ("messages[1].role ...").
 */
export class InvalidPromptError extends EngineError {
  override readonly code: string = 'E_INVALID_PROMPT';
  override readonly status: number = 400;
  readonly param: string = 'prompt';
}

/** The chat template failed to parse or render. */
export class ChatTemplateError extends EngineError {
  override readonly code: string = 'E_CHAT_TEMPLATE';
  override readonly status: number = 400;
}

/** A request id is already in flight on this engine. */
export class DuplicateRequestError extends EngineError {
  override readonly code: string = 'E_DUPLICATE_REQUEST';
  override readonly status: number = 409;
}

/** The engine was disposed (before or while the request ran). */
export class EngineDisposedError extends EngineError {
  override readonly code: string = 'E_ENGINE_DISPOSED';
  override readonly status: number = 503;
}

/** The native step failed; every in-flight request ends with this error. */
export class EngineStepError extends EngineError {
  override readonly code: string = 'E_ENGINE_STEP';
}

export const engineRequestErrorClasses = {
  SamplingParamsError,
  ContextLengthError,
  KvCapacityError,
  InvalidPromptError,
  ChatTemplateError,
  DuplicateRequestError,
  EngineDisposedError,
  EngineStepError,
} as const;

/**
 * Registers error classes with @flotilla/core's wire registry without importing core (the engine does
 * not depend on it): core keeps registered classes in a Map on globalThis under this registered symbol
 * (WIRE_ERROR_REGISTRY in packages/core/src/errors.ts) and reads it when it rebuilds an error.
 */
export function registerWireErrors(classes: Record<string, abstract new (...args: any[]) => Error>): void {
  const g = globalThis as { [key: symbol]: Map<string, unknown> | undefined };
  const key = Symbol.for('flotilla.wireErrorClasses');
  g[key] ??= new Map();
  for (const [name, cls] of Object.entries(classes)) g[key].set(name, cls);
}

registerWireErrors({ ...engineErrorClasses, ...engineRequestErrorClasses });
