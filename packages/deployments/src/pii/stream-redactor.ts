/**
 * PII in streamed output, across chunk boundaries: a value may arrive split over several deltas
 * ("4111 11" + "11 1111 ..."), so text is released only once no value could still grow into it.
 *
 * The redactor holds back the last HOLD_CHARS characters (64: longer than a card number with spaces,
 * an IBAN with spaces (≤ 42), a phone number or an IPv6 address) and moves the cut back to the start of
 * any value that straddles it. A value longer than HOLD_CHARS (a very long e-mail address) can be
 * released in two pieces and escape detection; that is the price of bounded latency. Text is released
 * in order, redacted; in 'block' mode the stream stops before the first value (`blocked` is set and
 * nothing after it is released).
 *
 *   const r = new StreamRedactor(filter);
 *   for (const delta of deltas) send(r.push(delta));
 *   send(r.end());
 */
import { redactMatches, type PiiFilter } from './pii-filter.js';

export const HOLD_CHARS = 64;

export class StreamRedactor {
  private buffer = '';
  /** True once a value was found in 'block' mode: the stream must end (finish_reason 'content_filter'). */
  blocked = false;

  constructor(
    private readonly filter: PiiFilter,
    private readonly hold = HOLD_CHARS,
  ) {}

  /** Adds a delta; returns the text now safe to send (possibly ''). */
  push(delta: string): string {
    if (this.blocked) return '';
    this.buffer += delta;
    return this.release(this.buffer.length - this.hold);
  }

  /** The rest, at the end of the stream. */
  end(): string {
    if (this.blocked) return '';
    return this.release(this.buffer.length);
  }

  private release(cut: number): string {
    if (cut <= 0) return '';
    const matches = this.filter.find(this.buffer);
    for (const m of matches) if (m.start < cut && m.end > cut) cut = m.start;
    const done = matches.filter((m) => m.end <= cut);
    const head = this.buffer.slice(0, cut);
    this.buffer = this.buffer.slice(cut);
    if (done.length === 0) return head;
    this.filter.report(done, 'output');
    if (this.filter.mode === 'block') {
      this.blocked = true;
      this.buffer = '';
      return head.slice(0, done[0]!.start);
    }
    return this.filter.mode === 'redact' ? redactMatches(head, done) : head;
  }
}
