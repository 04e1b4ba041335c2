/**
 * What a request may constrain its output to (SamplingParams.guided), checked for shape here (no
 * grammar engine needed); grammar-compiler.ts compiles it when the engine prepares the request, so a
 * bad schema, regex or grammar fails there with XGrammar's own message. Protocol adapters map onto it:
 * OpenAI's response_format (json_schema, json_object), vLLM's guided_json / guided_regex /
 * guided_choice / guided_grammar, TGI's grammar, and tool calling (a json_schema).
 */
import { SamplingParamsError } from '../errors.js';

export type GuidedSpec =
  /** Output is one JSON value valid under `schema` (an object, or its JSON text). */
  | { kind: 'json_schema'; schema: object | string }
  /** Output is one JSON object (any). */
  | { kind: 'json_object' }
  /** Output matches `pattern` whole (XGrammar's regex dialect: ECMAScript-like, no lookaround/backrefs). */
  | { kind: 'regex'; pattern: string }
  /** Output is exactly one of `choices`. */
  | { kind: 'choice'; choices: string[] }
  /** Output is a sentence of `grammar`, EBNF as XGrammar takes it (GBNF-like, rule `root` first). */
  | { kind: 'grammar'; grammar: string };

/** Most bytes of a schema, regex or grammar text (a guard against pathological compiles). */
export const MAX_GUIDED_SOURCE = 64 * 1024;
/** Most choices of a 'choice' spec. */
export const MAX_GUIDED_CHOICES = 1024;

/** Checks the shape of `v` as a GuidedSpec (throws SamplingParamsError naming `param`); returns a copy. */
export function checkGuidedSpec(v: unknown, param = 'guided'): GuidedSpec {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new SamplingParamsError(
      param,
      "must be an object { kind: 'json_schema' | 'json_object' | 'regex' | 'choice' | 'grammar', ... }",
    );
  const o = v as Record<string, unknown>;
  const only = (...keys: string[]) => {
    for (const k of Object.keys(o))
      if (k !== 'kind' && !keys.includes(k)) throw new SamplingParamsError(`${param}.${k}`, 'unknown field');
  };
  const text = (key: string): string => {
    const s = o[key];
    if (typeof s !== 'string' || s.length === 0)
      throw new SamplingParamsError(`${param}.${key}`, 'must be a non-empty string');
    if (s.length > MAX_GUIDED_SOURCE)
      throw new SamplingParamsError(`${param}.${key}`, `is longer than ${MAX_GUIDED_SOURCE} characters`);
    return s;
  };
  switch (o.kind) {
    case 'json_schema': {
      only('schema');
      const s = o.schema;
      if (typeof s === 'string') {
        text('schema');
        try {
          JSON.parse(s);
        } catch (err) {
          throw new SamplingParamsError(`${param}.schema`, `is not valid JSON: ${(err as Error).message}`);
        }
        return { kind: 'json_schema', schema: s };
      }
      if (typeof s === 'boolean') return { kind: 'json_schema', schema: JSON.stringify(s) };
      if (typeof s !== 'object' || s === null || Array.isArray(s))
        throw new SamplingParamsError(`${param}.schema`, 'must be a JSON Schema (an object, or its JSON text)');
      if (JSON.stringify(s).length > MAX_GUIDED_SOURCE)
        throw new SamplingParamsError(`${param}.schema`, `is longer than ${MAX_GUIDED_SOURCE} characters as JSON`);
      return { kind: 'json_schema', schema: s };
    }
    case 'json_object':
      only();
      return { kind: 'json_object' };
    case 'regex':
      only('pattern');
      return { kind: 'regex', pattern: text('pattern') };
    case 'grammar':
      only('grammar');
      return { kind: 'grammar', grammar: text('grammar') };
    case 'choice': {
      only('choices');
      const c = o.choices;
      if (!Array.isArray(c) || c.length === 0 || c.some((x) => typeof x !== 'string' || x.length === 0))
        throw new SamplingParamsError(`${param}.choices`, 'must be a non-empty array of non-empty strings');
      if (c.length > MAX_GUIDED_CHOICES)
        throw new SamplingParamsError(`${param}.choices`, `at most ${MAX_GUIDED_CHOICES} choices, got ${c.length}`);
      if (c.reduce((n, x) => n + (x as string).length, 0) > MAX_GUIDED_SOURCE)
        throw new SamplingParamsError(`${param}.choices`, `are longer than ${MAX_GUIDED_SOURCE} characters in all`);
      return { kind: 'choice', choices: [...(c as string[])] };
    }
    default:
      throw new SamplingParamsError(
        `${param}.kind`,
        `must be 'json_schema', 'json_object', 'regex', 'choice' or 'grammar', got ${JSON.stringify(o.kind) ?? 'nothing'}`,
      );
  }
}

/**
 * How XGrammar compiles a spec: a JSON schema text (strict: no properties or items the schema does not
 * name), or a structural tag (its one format that takes a regex or an EBNF grammar synchronously).
 * JSON is compact (one line, no free whitespace): a small model offered free whitespace may emit
 * nothing else. `key` identifies the grammar for the compile cache.
 */
export type GrammarSource =
  | { kind: 'json_schema'; schema: string; strict: boolean; key: string }
  | { kind: 'structural_tag'; json: string; key: string };

export function grammarSource(spec: GuidedSpec): GrammarSource {
  switch (spec.kind) {
    case 'json_schema': {
      const schema = typeof spec.schema === 'string' ? spec.schema : JSON.stringify(spec.schema);
      return { kind: 'json_schema', schema, strict: true, key: `s:${schema}` };
    }
    case 'json_object': // any object (XGrammar's built-in JSON grammar also takes arrays and scalars)
      return { kind: 'json_schema', schema: '{"type":"object"}', strict: false, key: 'j' };
    case 'regex':
      return tag({ type: 'regex', pattern: spec.pattern }, `r:${spec.pattern}`);
    case 'grammar':
      return tag({ type: 'grammar', grammar: spec.grammar }, `g:${spec.grammar}`);
    case 'choice': {
      const grammar = `root ::= ${spec.choices.map(ebnfString).join(' | ')}`;
      return tag({ type: 'grammar', grammar }, `g:${grammar}`);
    }
  }
}

function tag(format: Record<string, unknown>, key: string): GrammarSource {
  return { kind: 'structural_tag', json: JSON.stringify({ type: 'structural_tag', format }), key };
}

/** A string as an EBNF literal of XGrammar's: double quotes, backslash escapes, \uXXXX for controls. */
export function ebnfString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}
