/**
 * Reads fields of a JSON request body with checks that name the field: every typed getter throws
 * InvalidParameterError(name, problem). `null` reads as absent (OpenAI's SDKs send null for unset
 * optionals). After reading, `rejectUnknown()` refuses fields nobody read, so a misspelled parameter
 * is an error instead of being silently ignored. The engine's own parameters are not checked here but by
 * the engine's validator (generation.ts checkParams); these getters serve the fields each API owns.
 */
import { InvalidParameterError, MalformedRequestError } from './errors.js';

export interface NumberRule {
  min?: number;
  max?: number;
  /** min is exclusive. Default false. */
  aboveMin?: boolean;
  integer?: boolean;
}

export class BodyReader {
  private readonly read = new Set<string>();

  private constructor(
    private readonly body: Record<string, unknown>,
    private readonly prefix: string,
  ) {}

  /** `body` must be a JSON object; `prefix` is prepended to names in messages (e.g. 'parameters.'). */
  static of(body: unknown, what = 'request body', prefix = ''): BodyReader {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      if (prefix) throw new InvalidParameterError(prefix.replace(/\.$/, ''), 'must be an object');
      throw new MalformedRequestError(`The ${what} must be a JSON object (send content-type: application/json).`);
    }
    return new BodyReader(body as Record<string, unknown>, prefix);
  }

  name(key: string): string {
    return `${this.prefix}${key}`;
  }

  /** The raw value (undefined for absent or null), marked as read. */
  raw(key: string): unknown {
    this.read.add(key);
    const v = this.body[key];
    return v === null ? undefined : v;
  }

  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  number(key: string, rule: NumberRule = {}): number | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    const kind = rule.integer ? 'an integer' : 'a number';
    if (typeof v !== 'number' || !Number.isFinite(v) || (rule.integer && !Number.isInteger(v))) {
      throw new InvalidParameterError(this.name(key), `must be ${kind}, got ${describe(v)}`);
    }
    const low = rule.min !== undefined && (rule.aboveMin ? v <= rule.min : v < rule.min);
    const high = rule.max !== undefined && v > rule.max;
    if (low || high) throw new InvalidParameterError(this.name(key), `must be ${rangeText(rule)}, got ${v}`);
    return v;
  }

  integer(key: string, rule: Omit<NumberRule, 'integer'> = {}): number | undefined {
    return this.number(key, { ...rule, integer: true });
  }

  boolean(key: string): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean')
      throw new InvalidParameterError(this.name(key), `must be a boolean, got ${describe(v)}`);
    return v;
  }

  string(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new InvalidParameterError(this.name(key), `must be a string, got ${describe(v)}`);
    return v;
  }

  /** A string or an array of strings (stop sequences), at most `max`, none empty. */
  strings(key: string, max: number): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) {
      throw new InvalidParameterError(this.name(key), 'must be a string or an array of strings');
    }
    if (list.length > max)
      throw new InvalidParameterError(this.name(key), `at most ${max} entries, got ${list.length}`);
    if (list.some((s) => s === '')) throw new InvalidParameterError(this.name(key), 'entries must not be empty');
    return list as string[];
  }

  /** A nested object's reader (absent: undefined). */
  object(key: string): BodyReader | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    return BodyReader.of(v, key, `${this.name(key)}.`);
  }

  /** Refuses a field that is present and not allowed to be (e.g. tools); absent, null or `allowed` pass. */
  unsupported(key: string, allowed: (v: unknown) => boolean = () => false): void {
    const v = this.raw(key);
    if (v !== undefined && !allowed(v))
      throw new InvalidParameterError(this.name(key), 'is not supported by this server');
  }

  /** Throws for the first field that no getter read. */
  rejectUnknown(): void {
    for (const key of Object.keys(this.body)) {
      if (!this.read.has(key)) throw new InvalidParameterError(this.name(key), 'unknown parameter');
    }
  }
}

function rangeText(rule: NumberRule): string {
  const lo = rule.min === undefined ? '' : rule.aboveMin ? `> ${rule.min}` : `>= ${rule.min}`;
  const hi = rule.max === undefined ? '' : `<= ${rule.max}`;
  return [lo, hi].filter(Boolean).join(' and ');
}

export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : String(v);
}
