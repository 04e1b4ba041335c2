/**
 * A sample's output text and its stop strings: finds a stop string as text arrives (the output ends
 * before it), and while streaming holds back a tail that could still grow into one, so a client never
 * sees text that is then taken back.
 */
export class StopChecker {
  /** Output text so far (cut at the stop string once one is found). */
  text = '';
  private readonly stops: readonly string[];
  private readonly includeStop: boolean;
  private readonly maxStopLen: number;
  private emitted = 0;

  constructor(stops: readonly string[], includeStopStrInOutput = false) {
    this.stops = stops;
    this.includeStop = includeStopStrInOutput;
    this.maxStopLen = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /**
   * Appends `delta`; when `armed` (minTokens reached) and a stop string now appears, cuts the text
   * there and returns that stop string, else null.
   */
  append(delta: string, armed = true): string | null {
    if (delta.length === 0) return null;
    const from = Math.max(0, this.text.length - this.maxStopLen + 1);
    this.text += delta;
    if (!armed || this.maxStopLen === 0) return null;
    let best = -1;
    let found: string | null = null;
    for (const stop of this.stops) {
      const at = this.text.indexOf(stop, from);
      if (at >= 0 && (best < 0 || at < best)) {
        best = at;
        found = stop;
      }
    }
    if (found === null) return null;
    this.text = this.text.slice(0, best + (this.includeStop ? found.length : 0));
    return found;
  }

  /**
   * New text to hand out since the last call: everything when `final`, else all but the longest tail
   * that is a proper prefix of some stop string.
   */
  takeDelta(final: boolean): string {
    const end = final ? this.text.length : this.text.length - this.heldBack();
    if (end <= this.emitted) return '';
    const delta = this.text.slice(this.emitted, end);
    this.emitted = end;
    return delta;
  }

  /** Length of the text handed out so far. */
  get emittedLength(): number {
    return Math.min(this.emitted, this.text.length);
  }

  private heldBack(): number {
    const text = this.text;
    let held = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, text.length); k > held; k--) {
        if (text.endsWith(stop.slice(0, k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }
}
