/**
 * Structured output in OpenAI's and vLLM's spellings → the engine's GuidedSpec: response_format
 * ({ type: 'json_schema', json_schema: { name, schema, strict, description } }, { type: 'json_object' },
 * { type: 'text' }), and vLLM's guided_json, guided_regex, guided_choice, guided_grammar (with
 * guided_decoding_backend 'xgrammar' or 'auto', the one this server has). At most one of them. Shapes
 * are checked here, naming the field; the grammar itself is compiled by the engine when the request is
 * prepared, and its errors come back under the same name (names.guided).
 *
 * Also the fields the official SDK may send that do not change the output (store, metadata,
 * service_tier, user, ...): accepted and ignored, each logged once per process.
 */
import { checkGuidedSpec, type GuidedSpec } from '@flotilla/engine';
import { InvalidParameterError } from '../errors.js';
import type { BodyReader } from '../validate.js';

export interface GuidedRequest {
  spec: GuidedSpec;
  /** The field it came from, for errors (ParamNames.guided). */
  name: string;
}

const VLLM_FIELDS = ['guided_json', 'guided_regex', 'guided_choice', 'guided_grammar'] as const;

/** Reads response_format and vLLM's guided_* fields; undefined when the output is unconstrained. */
export function readGuided(r: BodyReader): GuidedRequest | undefined {
  const found: GuidedRequest[] = [];
  const rf = readResponseFormat(r);
  if (rf) found.push(rf);
  for (const field of VLLM_FIELDS) {
    const v = r.raw(field);
    if (v === undefined) continue;
    found.push({ name: field, spec: check(vllmSpec(field, v), field) });
  }
  const backend = r.string('guided_decoding_backend');
  if (backend !== undefined && !/^(auto|xgrammar)(:.*)?$/.test(backend))
    throw new InvalidParameterError(
      'guided_decoding_backend',
      `only 'xgrammar' (or 'auto') is available, got ${JSON.stringify(backend)}`,
    );
  r.unsupported('guided_whitespace_pattern');
  if (found.length > 1)
    throw new InvalidParameterError(
      found[1]!.name,
      `cannot be combined with ${found[0]!.name}: give one output constraint`,
    );
  return found[0];
}

function vllmSpec(field: (typeof VLLM_FIELDS)[number], v: unknown): unknown {
  switch (field) {
    case 'guided_json':
      return { kind: 'json_schema', schema: v };
    case 'guided_regex':
      return { kind: 'regex', pattern: v };
    case 'guided_choice':
      return { kind: 'choice', choices: v };
    case 'guided_grammar':
      return { kind: 'grammar', grammar: v };
  }
}

function readResponseFormat(r: BodyReader): GuidedRequest | undefined {
  const name = 'response_format';
  if (r.raw(name) === undefined) return undefined;
  const f = r.object(name)!;
  const type = f.string('type');
  switch (type) {
    case 'text':
      f.rejectUnknown();
      return undefined;
    case 'json_object':
      f.rejectUnknown();
      return { name, spec: { kind: 'json_object' } };
    case 'json_schema': {
      const js = f.object('json_schema');
      if (!js) throw new InvalidParameterError(`${name}.json_schema`, 'is required with type json_schema');
      const schemaName = js.string('name');
      if (schemaName === undefined || !/^[A-Za-z0-9_-]{1,64}$/.test(schemaName))
        throw new InvalidParameterError(`${name}.json_schema.name`, 'is required: 1-64 letters, digits, _ or -');
      js.string('description');
      js.boolean('strict'); // the output always follows the schema here, strict or not
      const schema = js.raw('schema');
      js.rejectUnknown();
      f.rejectUnknown();
      const where = `${name}.json_schema.schema`;
      // no schema: any JSON object (OpenAI's default for a schema-less json_schema format)
      if (schema === undefined) return { name: where, spec: { kind: 'json_object' } };
      return { name: where, spec: check({ kind: 'json_schema', schema }, where) };
    }
    default:
      throw new InvalidParameterError(
        `${name}.type`,
        `must be 'text', 'json_object' or 'json_schema', got ${JSON.stringify(type) ?? 'nothing'}`,
      );
  }
}

/** checkGuidedSpec with errors under the API's name. */
function check(v: unknown, name: string): GuidedSpec {
  try {
    return checkGuidedSpec(v, name);
  } catch (err) {
    const e = err as { problem?: string; param?: string };
    throw new InvalidParameterError(name, e.problem ?? String(err));
  }
}

/** Fields the OpenAI SDK may send that do not change what is generated: accepted, ignored, logged once. */
export const IGNORED_FIELDS = ['store', 'metadata', 'service_tier', 'user', 'prompt_cache_key', 'safety_identifier'];
const logged = new Set<string>();

/** Marks the ignored fields of `r` as read (so rejectUnknown lets them through) and logs each once. */
export function readIgnoredFields(r: BodyReader): void {
  for (const field of IGNORED_FIELDS) {
    if (r.raw(field) === undefined || logged.has(field)) continue;
    logged.add(field);
    console.warn(`[flotilla] OpenAI field '${field}' is accepted and ignored (it does not change the output)`);
  }
}
