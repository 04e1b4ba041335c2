/**
 * The PII policy: what to do with personal data found in a prompt or an output. Pure (no I/O): the
 * caller passes an `onDetect` hook for its metrics; values never leave this module — only kinds and
 * counts do, so nothing downstream can log them by accident.
 *
 * Modes: 'redact' replaces each value by a placeholder naming its kind (`[EMAIL]`, `[CARD]`, ...);
 * 'block' refuses a prompt (PiiBlockedError: 400 with the kinds found) and cuts an output at the first
 * value (finish_reason 'content_filter', as OpenAI reports filtered output); 'log' passes text through
 * unchanged and only counts.
 */
import { findPii, PII_KINDS, type PiiKind, type PiiMatch } from './recognizers.js';
import { PiiBlockedError } from './pii-errors.js';

export type PiiMode = 'redact' | 'block' | 'log';
export type PiiWhere = 'prompt' | 'output';

export interface PiiOptions {
  /** Default 'redact'. */
  mode?: PiiMode;
  /** Kinds looked for. Default all: email, phone, card, iban, ssn, ip. */
  kinds?: PiiKind[];
  /** Region for phone numbers without a country code. Default 'US'. */
  defaultRegion?: string;
  /** Also scan generated text (streamed across chunk boundaries). Default true. */
  outputs?: boolean;
}

export type PiiCounts = Partial<Record<PiiKind, number>>;

/** Called once per kind found, with how many values of it. */
export type PiiDetectHook = (kind: PiiKind, where: PiiWhere, count: number, mode: PiiMode) => void;

export function placeholder(kind: PiiKind): string {
  return `[${kind.toUpperCase()}]`;
}

export function countKinds(matches: readonly PiiMatch[]): PiiCounts {
  const counts: PiiCounts = {};
  for (const m of matches) counts[m.kind] = (counts[m.kind] ?? 0) + 1;
  return counts;
}

/** `text` with every match replaced by its placeholder (matches sorted, non-overlapping, as findPii gives). */
export function redactMatches(text: string, matches: readonly PiiMatch[]): string {
  let out = '';
  let at = 0;
  for (const m of matches) {
    out += text.slice(at, m.start) + placeholder(m.kind);
    at = m.end;
  }
  return out + text.slice(at);
}

export function validatePiiOptions(
  o: PiiOptions,
): Required<Omit<PiiOptions, 'defaultRegion'>> & { defaultRegion: string } {
  const mode = o.mode ?? 'redact';
  if (mode !== 'redact' && mode !== 'block' && mode !== 'log') {
    throw new TypeError(`pii.mode must be 'redact', 'block' or 'log', got ${JSON.stringify(mode)}`);
  }
  const kinds = o.kinds ?? [...PII_KINDS];
  for (const k of kinds) {
    if (!(PII_KINDS as readonly string[]).includes(k)) {
      throw new TypeError(`pii.kinds: unknown kind ${JSON.stringify(k)} (known: ${PII_KINDS.join(', ')})`);
    }
  }
  return { mode, kinds, defaultRegion: o.defaultRegion ?? 'US', outputs: o.outputs ?? true };
}

export class PiiFilter {
  readonly options: ReturnType<typeof validatePiiOptions>;

  constructor(
    options: PiiOptions = {},
    private readonly onDetect: PiiDetectHook = () => {},
  ) {
    this.options = validatePiiOptions(options);
  }

  get mode(): PiiMode {
    return this.options.mode;
  }

  find(text: string): PiiMatch[] {
    return findPii(text, this.options.kinds, { defaultRegion: this.options.defaultRegion });
  }

  report(matches: readonly PiiMatch[], where: PiiWhere): void {
    for (const [kind, n] of Object.entries(countKinds(matches))) this.onDetect(kind as PiiKind, where, n, this.mode);
  }

  /**
   * A prompt (or one message's content) as the model should see it: unchanged ('log', or nothing found),
   * redacted ('redact'), or refused with PiiBlockedError naming the kinds ('block'). `param` is the
   * request field, for the error.
   */
  checkPrompt(text: string, param = 'prompt'): string {
    const matches = this.find(text);
    if (matches.length === 0) return text;
    this.report(matches, 'prompt');
    if (this.mode === 'block') throw new PiiBlockedError(Object.keys(countKinds(matches)) as PiiKind[], param);
    return this.mode === 'redact' ? redactMatches(text, matches) : text;
  }
}
