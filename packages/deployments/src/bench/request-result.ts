/** What the client records of one benchmark request; shared by the sender, the figures and the SLO check. */

/** One request as the client saw it. Times in ms. */
export interface RequestResult {
  ok: boolean;
  error?: string;
  /** Prompt tokens (the server's usage when reported, else the dataset's length). */
  promptLen: number;
  /** Output tokens (the server's usage when reported, else the streamed chunks). */
  outputLen: number;
  /** Send → first non-empty chunk. NaN when none came. */
  ttftMs: number;
  /** Gaps between consecutive non-empty chunks after the first. */
  itlMs: number[];
  /** Send → end of the response. */
  latencyMs: number;
  /** Send time, ms after the start of the run. */
  startMs: number;
}

/** TPOT of one request, or undefined when it produced fewer than two tokens. */
export function tpotOf(r: RequestResult): number | undefined {
  return r.outputLen > 1 ? (r.latencyMs - r.ttftMs) / (r.outputLen - 1) : undefined;
}
