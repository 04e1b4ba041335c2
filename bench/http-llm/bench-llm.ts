/** The benchmark's LLMServer deployments, in a module of their own: replicas import this file, not run.ts. */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { parentPort } from 'node:worker_threads';
import type { HttpRequestLike } from '@flotilla/core';
import { deployment } from '@flotilla/core';
import { LLMServer } from '@flotilla/deployments';

@deployment({ maxOngoingRequests: 512, placement: 'thread' })
export class BenchLLM extends LLMServer {}

/** BenchLLM that can profile its own thread (profile.ts): replicas run with execArgv [], so --cpu-prof does not reach them. */
@deployment({ maxOngoingRequests: 512, placement: 'thread' })
export class ProfiledBenchLLM extends LLMServer {
  #session: Session | undefined;
  /** Messages this thread posted to the proxy's, the stream items in them, and HTTP chunks yielded. */
  readonly counts = { posts: 0, items: 0, chunks: 0 };

  override async *handleHttp(req: HttpRequestLike) {
    for await (const chunk of super.handleHttp(req)) {
      this.counts.chunks++;
      yield chunk;
    }
  }

  /** Counts since the last call. */
  takeCounts(): { posts: number; items: number; chunks: number } {
    const c = { ...this.counts };
    Object.assign(this.counts, { posts: 0, items: 0, chunks: 0 });
    return c;
  }

  #gaps = { steps: 0, gapMs: 0, nativeMs: 0 };
  #lastResultAt = NaN;

  /**
   * Watches the step loop: per step, the time from a native step's result to the launch of the next one
   * (JS on the loop's critical path, plus waiting for a core) and the native step itself.
   */
  watchSteps(): void {
    this.engine?.onEvent((e) => {
      if (e.type !== 'step') return;
      const now = performance.now();
      const startedAt = now - e.durationMs;
      if (startedAt > this.#lastResultAt && startedAt - this.#lastResultAt < 50) {
        this.#gaps.steps++;
        this.#gaps.gapMs += startedAt - this.#lastResultAt;
        this.#gaps.nativeMs += e.durationMs;
      }
      this.#lastResultAt = now;
    });
  }

  /** Mean gap and step time since the last call, in ms. */
  takeSteps(): { steps: number; meanGapMs: number; meanStepMs: number } {
    const g = this.#gaps;
    this.#gaps = { steps: 0, gapMs: 0, nativeMs: 0 };
    return { steps: g.steps, meanGapMs: g.gapMs / g.steps, meanStepMs: g.nativeMs / g.steps };
  }

  countMessages(): void {
    const port = parentPort!;
    const post = port.postMessage.bind(port);
    port.postMessage = (
      msg: { type?: string; messages?: unknown[]; ids?: unknown[]; others?: unknown[] },
      ...rest: unknown[]
    ) => {
      this.counts.posts++;
      this.counts.items +=
        msg?.type === 'batch'
          ? msg.messages!.length
          : msg?.type === 'packed-batch'
            ? msg.ids!.length + msg.others!.length
            : 1;
      return (post as (...a: unknown[]) => void)(msg, ...rest);
    };
  }

  async startProfile(): Promise<void> {
    this.#session = new Session();
    this.#session.connect();
    await this.#session.post('Profiler.enable');
    await this.#session.post('Profiler.setSamplingInterval', { interval: 200 });
    await this.#session.post('Profiler.start');
  }

  async stopProfile(file: string): Promise<void> {
    const { profile } = await this.#session!.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    this.#session!.disconnect();
  }
}
