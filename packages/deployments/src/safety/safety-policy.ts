/**
 * The content-safety decision and the output filter that applies it to streamed text (pure: the
 * classifier is a function passed in, the clock and metrics are hooks).
 *
 * Outputs are judged in windows of `windowChars` characters (and the remainder at the end): a window is
 * released only after the classifier has passed it, so unsafe text never reaches the client in 'block'
 * or 'redact' mode; the price is that streamed text arrives a window at a time. Each window is judged
 * with up to `windowChars` characters of the text released before it as context, so something unsafe
 * that straddles a window boundary is still seen whole (the earlier window is already out by then: what
 * is withheld is from the window where it completes).
 */
import type { OutputFilter } from '../guards/output-filter.js';

export type SafetyMode = 'block' | 'redact' | 'log';
export type SafetyWhere = 'prompt' | 'output';
export type SafetyDecision = 'allow' | 'block' | 'redact' | 'flag';

/** A classifier's verdict: the probability that the text is unsafe, and a label if it has one. */
export interface SafetyVerdict {
  score: number;
  label?: string;
}

export type Classify = (text: string) => Promise<SafetyVerdict>;
export type DecisionHook = (where: SafetyWhere, decision: SafetyDecision, seconds: number) => void;

export interface SafetyPolicyOptions {
  /** Verdicts with score >= threshold are unsafe. Default 0.5. */
  threshold?: number;
  /** 'block' refuses prompts and cuts outputs; 'redact' replaces unsafe output windows by `replacement` (prompts are refused); 'log' only counts. Default 'block'. */
  mode?: SafetyMode;
  /** Judge prompts. Default true. */
  prompts?: boolean;
  /** Judge outputs. Default true. */
  outputs?: boolean;
  /** Output characters per judgement. Default 200. */
  windowChars?: number;
  /** What an unsafe output window becomes in 'redact' mode. Default '[removed]'. */
  replacement?: string;
}

export type ResolvedSafetyPolicy = Required<SafetyPolicyOptions>;

export function resolveSafetyPolicy(o: SafetyPolicyOptions = {}): ResolvedSafetyPolicy {
  const r: ResolvedSafetyPolicy = {
    threshold: o.threshold ?? 0.5,
    mode: o.mode ?? 'block',
    prompts: o.prompts ?? true,
    outputs: o.outputs ?? true,
    windowChars: o.windowChars ?? 200,
    replacement: o.replacement ?? '[removed]',
  };
  if (!(r.threshold >= 0 && r.threshold <= 1))
    throw new TypeError(`safety.threshold must be in [0, 1], got ${r.threshold}`);
  if (!['block', 'redact', 'log'].includes(r.mode))
    throw new TypeError(`safety.mode must be block, redact or log, got ${r.mode}`);
  if (!(Number.isInteger(r.windowChars) && r.windowChars >= 1)) {
    throw new TypeError(`safety.windowChars must be an integer >= 1, got ${r.windowChars}`);
  }
  return r;
}

/** Judges one text: the decision under the policy, timed for the hook. */
export async function judge(
  policy: ResolvedSafetyPolicy,
  classify: Classify,
  text: string,
  where: SafetyWhere,
  onDecision: DecisionHook,
): Promise<{ decision: SafetyDecision; score: number }> {
  const started = performance.now();
  const { score } = await classify(text);
  if (!(score >= 0 && score <= 1)) throw new TypeError(`the content classifier returned score ${score}, not in [0, 1]`);
  const unsafe = score >= policy.threshold;
  const decision: SafetyDecision = !unsafe
    ? 'allow'
    : policy.mode === 'log'
      ? 'flag'
      : where === 'prompt'
        ? 'block'
        : policy.mode;
  onDecision(where, decision, (performance.now() - started) / 1000);
  return { decision, score };
}

/** Output text judged window by window (see the file comment). */
export class SafetyOutputFilter implements OutputFilter {
  private buffer = '';
  /** The end of the text released so far, judged again with the next window. */
  private context = '';
  blocked = false;

  constructor(
    private readonly policy: ResolvedSafetyPolicy,
    private readonly classify: Classify,
    private readonly onDecision: DecisionHook,
  ) {}

  async push(delta: string): Promise<string> {
    if (this.blocked) return '';
    this.buffer += delta;
    let out = '';
    while (!this.blocked && this.buffer.length >= this.policy.windowChars) {
      const window = this.buffer.slice(0, this.policy.windowChars);
      this.buffer = this.buffer.slice(this.policy.windowChars);
      out += await this.release(window);
    }
    return out;
  }

  async end(): Promise<string> {
    if (this.blocked || this.buffer === '') return '';
    const rest = this.buffer;
    this.buffer = '';
    return this.release(rest);
  }

  private async release(window: string): Promise<string> {
    const { decision } = await judge(this.policy, this.classify, this.context + window, 'output', this.onDecision);
    if (decision === 'block') {
      this.blocked = true;
      this.buffer = '';
      return '';
    }
    // A redacted window is not context for the next one (it was not released).
    this.context = decision === 'redact' ? '' : window.slice(-this.policy.windowChars);
    return decision === 'redact' ? this.policy.replacement : window;
  }
}
