/**
 * A progress reporter for long CLI steps (model loading, quantization, builds, benchmark runs): a
 * redrawn bar on a terminal, and on a pipe or CI log an occasional plain line instead, so logs stay
 * readable and never fill with carriage returns. Its callback has the shape of loadModel's onProgress.
 */
import type { Writable } from 'node:stream';

export interface ProgressOptions {
  /** What is progressing, e.g. 'loading stories260K'. */
  label: string;
  /** Where to draw. Default: process.stderr (stdout stays for results). */
  stream?: Writable & { isTTY?: boolean; columns?: number };
  /** Draw a bar (true) or print lines (false). Default: whether the stream is a TTY. */
  tty?: boolean;
  /** Least time between two plain lines when not on a TTY. Default: 2000 ms. */
  lineIntervalMs?: number;
  /** How to show amounts, e.g. bytes as MiB. Default: plain numbers. */
  unit?: 'count' | 'bytes';
  /** Clock, for tests. Default: performance.now. */
  now?: () => number;
}

/** Most redraws per second on a TTY: more costs CPU and flickers without telling the eye anything. */
const REDRAW_MS = 100;
const BAR_WIDTH = 24;

export class Progress {
  private readonly stream: NonNullable<ProgressOptions['stream']>;
  private readonly tty: boolean;
  private readonly now: () => number;
  private readonly started: number;
  private lastDraw = -Infinity;
  private done = 0;
  private total = 0;
  private finished = false;

  constructor(private readonly options: ProgressOptions) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean(this.stream.isTTY);
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
  }

  /** Sets the amount done (and the total, when known); draws when enough time has passed. */
  update(done: number, total = this.total): void {
    if (this.finished) return;
    this.done = done;
    this.total = total;
    const t = this.now();
    const interval = this.tty ? REDRAW_MS : (this.options.lineIntervalMs ?? 2000);
    if (t - this.lastDraw < interval && done < total) return;
    this.lastDraw = t;
    this.draw(t);
  }

  /** A callback for APIs that report (done, total), such as loadModel's onProgress. */
  get callback(): (done: number, total: number) => void {
    return (done, total) => this.update(done, total);
  }

  /** Draws the final state (with an optional note) and ends the line. */
  finish(note?: string): void {
    if (this.finished) return;
    this.finished = true;
    const text = renderProgress({ ...this.state(this.now()), note });
    this.stream.write(this.tty ? `\r\x1b[2K${text}\n` : `${text}\n`);
  }

  private state(t: number) {
    return {
      label: this.options.label,
      done: this.done,
      total: this.total,
      elapsedMs: t - this.started,
      unit: this.options.unit ?? 'count',
      bar: this.tty,
    };
  }

  private draw(t: number): void {
    const text = renderProgress(this.state(t));
    this.stream.write(this.tty ? `\r\x1b[2K${text}` : `${text}\n`);
  }
}

export interface ProgressState {
  label: string;
  done: number;
  /** 0 or less: unknown. */
  total: number;
  elapsedMs: number;
  unit: 'count' | 'bytes';
  /** Include a drawn bar. */
  bar: boolean;
  note?: string;
}

/** One line: 'label [#####.....]  45%  12.3/27.1 MiB  1.2s' (pure, for tests and both modes). */
export function renderProgress(s: ProgressState): string {
  const known = s.total > 0;
  const frac = known ? Math.min(1, Math.max(0, s.done / s.total)) : 0;
  const filled = Math.round(frac * BAR_WIDTH);
  const bar = s.bar && known ? ` [${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]` : '';
  const pct = known
    ? ` ${Math.floor(frac * 100)
        .toString()
        .padStart(3)}%`
    : '';
  const amount = known ? `${amountOf(s.done, s.unit)}/${amountOf(s.total, s.unit)}` : amountOf(s.done, s.unit);
  const unit = s.unit === 'bytes' ? ' MiB' : '';
  return `${s.label}${bar}${pct}  ${amount}${unit}  ${(s.elapsedMs / 1000).toFixed(1)}s${s.note ? `  ${s.note}` : ''}`;
}

function amountOf(n: number, unit: 'count' | 'bytes'): string {
  return unit === 'bytes' ? (n / 2 ** 20).toFixed(1) : String(n);
}

/**
 * An onProgress callback for loadModel / LLMEngine.create that reports weight loading (and conversion,
 * when quantizing) as 'loading NAME' on stderr: a bar on a terminal, lines in logs and replicas.
 * Finishes itself when the last tensor is done.
 */
export function modelLoadProgress(
  name: string,
  options: Omit<ProgressOptions, 'label'> = {},
): (done: number, total: number) => void {
  const progress = new Progress({ label: `loading ${name}`, ...options });
  return (done, total) => {
    progress.update(done, total);
    if (total > 0 && done >= total) progress.finish('tensors');
  };
}
