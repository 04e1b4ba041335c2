/**
 * The multiplexed model id a client names at the proxies (Ray Serve's header): HTTP header
 * `serve_multiplexed_model_id` (or `serve-multiplexed-model-id`, for clients and proxies that drop
 * underscores), gRPC metadata `serve_multiplexed_model_id` or `multiplexed_model_id`. It becomes the
 * call's CallOptions.multiplexedModelId (see multiplexed.ts).
 */
import { BadRequestError } from '../errors.js';

export const MULTIPLEXED_MODEL_HEADER = 'serve_multiplexed_model_id';
const HEADER_NAMES = [MULTIPLEXED_MODEL_HEADER, 'serve-multiplexed-model-id'];
const METADATA_NAMES = [MULTIPLEXED_MODEL_HEADER, 'multiplexed_model_id'];
/** Longer ids are refused (400): an id is a name, and it travels with every call and report. */
export const MAX_MODEL_ID_LENGTH = 256;

/** The id in HTTP headers (lower-case keys, as Node gives them), undefined when absent or empty. */
export function modelIdFromHeaders(headers: Record<string, string | string[] | undefined>): string | undefined {
  for (const name of HEADER_NAMES) {
    const id = check(headers[name], `header ${name}`);
    if (id !== undefined) return id;
  }
  return undefined;
}

/** The id in gRPC metadata (`get(key)` as grpc-js's Metadata has it). */
export function modelIdFromMetadata(metadata: { get(key: string): unknown[] }): string | undefined {
  for (const name of METADATA_NAMES) {
    const values = metadata.get(name);
    const id = check(values.length > 1 ? values : values[0], `metadata ${name}`);
    if (id !== undefined) return id;
  }
  return undefined;
}

function check(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new BadRequestError(`${where} was given ${value.length} times; give one model id`);
  if (typeof value !== 'string') throw new BadRequestError(`${where} must be text`);
  const id = value.trim();
  if (id === '') return undefined;
  if (id.length > MAX_MODEL_ID_LENGTH)
    throw new BadRequestError(`${where} is ${id.length} characters long; the most is ${MAX_MODEL_ID_LENGTH}`);
  return id;
}
