/**
 * Tokenizing off the engine's event loop. The engine's step loop and every running stream share the replica's
 * one JavaScript thread, and tokenizers are JavaScript (linear in the text, milliseconds per kilobyte): a long
 * prompt tokenized there stalls every stream for as long. Texts of `offLoopChars` characters or more are therefore encoded
 * by a worker thread that builds the same tokenizer from the same files (started on first need, one job at a
 * time in arrival order); shorter ones, where a thread hop would cost more than it saves, stay here.
 *
 * The worker proves it agrees with the engine's tokenizer before use (the ids of a probe text must match);
 * if it cannot load, disagrees, or dies, texts are encoded here as before: slower streams, never wrong ids.
 */
import { Worker } from 'node:worker_threads';
import type { EncodeOptions, Tokenizer } from '@flotilla/engine';
import type { TokenizerJob, TokenizerWorkerData, TokenizerWorkerReply } from './tokenizer-worker.js';

/** What route handlers tokenize prompts with (HandlerContext.encoder). */
export interface PromptEncoder {
  /** Texts of at least this many characters (UTF-16 code units) are encoded off the event loop. */
  readonly offLoopChars: number;
  /** The ids `tokenizer.encode(text, options)` gives. */
  encode(text: string, options?: EncodeOptions): Promise<number[]>;
}

export interface OffLoopTokenizerOptions {
  /** Default OFF_LOOP_TOKENIZE_CHARS. */
  offLoopChars?: number;
}

/** About 1 KB of text: a few milliseconds of tokenizing, against tens of microseconds for the thread hop. */
export const OFF_LOOP_TOKENIZE_CHARS = 1024;

const WORKER_URL = new URL('./tokenizer-worker.mjs', import.meta.url);
const PROBE = 'Once upon a time, Lily saw 3 birds: "Hello!" 日本語 ünïcödé\n\tend.';

interface Pending {
  text: string;
  options: EncodeOptions | undefined;
  resolve: (ids: number[]) => void;
  reject: (err: Error) => void;
}

export class OffLoopTokenizer implements PromptEncoder {
  readonly offLoopChars: number;
  #worker: Worker | undefined;
  #ready: Promise<boolean> | undefined;
  /** The worker cannot be used (failed to load, disagreed with the engine's tokenizer): encode here. */
  #unusable = false;
  #disposed = false;
  #nextId = 0;
  readonly #pending = new Map<number, Pending>();
  readonly #counts = { offLoop: 0, onLoop: 0 };

  constructor(
    private readonly local: Tokenizer,
    private readonly source: { model: string; tokenizer: string | undefined },
    options: OffLoopTokenizerOptions = {},
  ) {
    this.offLoopChars = options.offLoopChars ?? OFF_LOOP_TOKENIZE_CHARS;
  }

  /** How many texts were encoded by the worker and how many here (for tests and diagnostics). */
  get counts(): { offLoop: number; onLoop: number } {
    return { ...this.#counts };
  }

  async encode(text: string, options?: EncodeOptions): Promise<number[]> {
    if (this.#disposed) throw new Error('the tokenizer is disposed');
    if (text.length >= this.offLoopChars && !this.#unusable && (await this.#start())) {
      const ids = await this.#submit(text, options);
      if (ids) {
        this.#counts.offLoop++;
        return ids;
      }
    }
    this.#counts.onLoop++;
    return this.local.encode(text, options);
  }

  /** Stops the worker; later encode() calls reject. Idempotent. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const worker = this.#worker;
    this.#worker = undefined;
    for (const p of this.#pending.values()) p.reject(new Error('the tokenizer is disposed'));
    this.#pending.clear();
    await worker?.terminate();
  }

  /** Starts the worker once (again after it died); resolves whether it can be used. */
  #start(): Promise<boolean> {
    if (this.#ready) return this.#ready;
    const data: TokenizerWorkerData = { model: this.source.model, tokenizer: this.source.tokenizer, probe: PROBE };
    // execArgv []: the parent's loader flags (vitest, tsx CLI) must not be inherited; the .mjs registers tsx.
    const worker = new Worker(WORKER_URL, { workerData: data, execArgv: [], name: 'flotilla-tokenizer' });
    worker.unref(); // never what keeps a process alive
    this.#worker = worker;
    this.#ready = new Promise<boolean>((resolve) => {
      worker.on('message', (reply: TokenizerWorkerReply) => {
        switch (reply.type) {
          case 'ready': {
            const agrees = sameIds(reply.probeIds, this.local.encode(PROBE));
            if (!agrees) this.#giveUp(worker, 'its tokenizer disagrees with the engine');
            resolve(agrees);
            return;
          }
          case 'failed':
            this.#giveUp(worker, reply.message);
            resolve(false);
            return;
          case 'done':
          case 'error': {
            const job = this.#pending.get(reply.id);
            if (!job) return;
            this.#pending.delete(reply.id);
            if (reply.type === 'done') job.resolve(Array.from(reply.ids));
            else job.reject(new Error(reply.message));
          }
        }
      });
      worker.on('error', (err) => this.#lost(worker, err, resolve));
      worker.on('exit', () => this.#lost(worker, new Error('the tokenizer thread exited'), resolve));
    });
    return this.#ready;
  }

  /** Resolves with the ids, or undefined when the worker went away meanwhile (the caller encodes here). */
  #submit(text: string, options: EncodeOptions | undefined): Promise<number[] | undefined> {
    const worker = this.#worker;
    if (!worker) return Promise.resolve(undefined);
    const id = this.#nextId++;
    return new Promise<number[] | undefined>((resolve, reject) => {
      this.#pending.set(id, { text, options, resolve, reject });
      const job: TokenizerJob = { id, text, addBos: options?.addBos };
      worker.postMessage(job);
    }).catch((err: Error) => {
      if (this.#disposed) throw err;
      // The worker's own encode failed: the local one fails the same way, with the engine's error class.
      return this.local.encode(text, options);
    });
  }

  /** The worker crashed or exited: its jobs are encoded here, and the next long text starts a new one. */
  #lost(worker: Worker, err: Error, resolveReady: (ok: boolean) => void): void {
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    this.#ready = undefined;
    resolveReady(false);
    if (this.#disposed) return;
    process.stderr.write(`[flotilla] LLMServer: the tokenizer thread stopped (${err.message}); restarting on need\n`);
    const jobs = [...this.#pending.values()];
    this.#pending.clear();
    for (const job of jobs) {
      try {
        job.resolve(this.local.encode(job.text, job.options));
      } catch (e) {
        job.reject(e as Error);
      }
    }
  }

  #giveUp(worker: Worker, why: string): void {
    this.#unusable = true;
    this.#worker = undefined;
    process.stderr.write(`[flotilla] LLMServer: long prompts are tokenized on the event loop: ${why}\n`);
    void worker.terminate();
  }
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
