/**
 * A small non-LLM pipeline (`serve run examples/pipeline.ts:app`; it was `npm start` before the LLM server).
 *
 *   Router (worker thread) ──► Analyzer  (2 worker-thread replicas): word and character statistics
 *                          └─► Narrator  (child process):            streams the text back word by word
 *
 * Try it:
 *   curl -s localhost:8000/ -d '{"text":"the quick brown fox"}'            # router picks a route
 *   curl -s localhost:8000/analyze -d '"hello flotilla"'                     # one deployment, JSON in/out
 *   curl -sN localhost:8000/narrate -H 'accept: text/event-stream' -d '["one two three", 200]'   # SSE
 */
import { threadId } from 'node:worker_threads';
import { setTimeout as sleep } from 'node:timers/promises';
import { deployment, type DeploymentHandle } from '@flotilla/core';

@deployment({ numReplicas: 2, placement: 'thread' })
export class Analyzer {
  analyze(text: string) {
    const words = text.split(/\s+/).filter(Boolean);
    return {
      words: words.length,
      chars: text.length,
      longest: words.reduce((a, w) => (w.length > a.length ? w : a), ''),
      servedBy: { pid: process.pid, thread: threadId },
    };
  }
}

@deployment({ placement: 'process' })
export class Narrator {
  /** Yields one word at a time, like tokens from a model; a client that disconnects stops it. */
  async *narrate(text: string, delayMs = 100) {
    for (const word of text.split(/\s+/).filter(Boolean)) {
      yield { word, pid: process.pid };
      await sleep(delayMs);
    }
  }
}

@deployment({ placement: 'thread' })
export class Router {
  constructor(
    private readonly analyzer: DeploymentHandle<Analyzer>,
    private readonly narrator: DeploymentHandle<Narrator>,
  ) {}

  /** POST / {"text": "..."}: short texts are analyzed, long ones narrated and collected. */
  async __call__(input: { text?: string }) {
    const text = String(input?.text ?? '');
    if (text.split(/\s+/).length <= 8) return { route: 'analyzer', result: await this.analyzer.analyze(text) };
    const words: string[] = [];
    for await (const part of this.narrator.stream.narrate(text, 0)) words.push(part.word);
    return { route: 'narrator', result: { words: words.length } };
  }

  analyze(text: string) {
    return this.analyzer.analyze(text);
  }

  /** A stream across two hops: this thread relays the child process's generator. */
  async *narrate(text: string, delayMs = 100) {
    yield* this.narrator.stream.narrate(text, delayMs);
  }
}

export const app = Router.bind(Analyzer.bind(), Narrator.bind());
