/**
 * Failures are visible, never hangs: process replicas frozen (SIGSTOP) or killed (SIGKILL) under load,
 * behind the real HTTP and gRPC proxies. Every stream ends, either in its protocol's error (core's SSE
 * `event: error`, an NDJSON error line, gRPC UNAVAILABLE) or, when nothing had reached the client, as a
 * success retried on the other replica. Health checks are short (test/fixtures/apps/frozen.ts): period
 * 0.5 s, timeout 1 s, one failure replaces.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HEALTH_CHECK_TIMEOUT_S, rawTicker, ticker } from '../fixtures/apps/frozen.js';
import { eventually, serveForTest, type Served, serveClient } from '../helpers/ingress.js';

let served: Served;
let client: grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientReadableStream<{ payload: Buffer }>>;
let dir: string;
/** Replicas a test stopped or killed: killed for good afterwards, so a failed test leaves no frozen process. */
const touched = new Set<number>();

beforeAll(async () => {
  served = await serveForTest([
    { name: 'tick', routePrefix: '/tick', app: ticker() },
    { name: 'raw', routePrefix: '/raw', app: rawTicker() },
  ]);
  client = serveClient(served.grpcAddress);
  dir = mkdtempSync(path.join(tmpdir(), 'flotilla-frozen-'));
}, 120_000);
afterAll(async () => {
  client?.close();
  await served?.close();
  rmSync(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const pid of touched) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  touched.clear();
  // Each test starts with both replicas of both apps running again.
  await eventually(() => running('tick').length === 2 && running('raw').length === 2, 60_000, 'replacements');
}, 90_000);

function running(app: string): number[] {
  const dep = served.instance.status().applications.find((a) => a.name === app)!.deployments[0]!;
  return dep.replicas.filter((r) => r.state === 'RUNNING').map((r) => r.pid!);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  touched.add(pid);
  process.kill(pid, sig);
}

interface SseEvent {
  event: string;
  data: string;
}

function parseEvent(block: string): SseEvent {
  const event = { event: 'message', data: '' };
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event.event = line.slice(7);
    else if (line.startsWith('data: ')) event.data += line.slice(6);
  }
  return event;
}

/** A whole SSE text as events; a trailing partial event (a cut stream) is dropped. */
function parseSse(text: string): SseEvent[] {
  return text.split('\n\n').slice(0, -1).map(parseEvent);
}

/** Reads a whole response as SSE events (the `event:` name defaults to 'message'). */
async function readSse(res: Response, onEvent?: (e: SseEvent) => void): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(bytes, { stream: true });
    for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
      const event = parseEvent(buffered.slice(0, end));
      buffered = buffered.slice(end + 2);
      events.push(event);
      onEvent?.(event);
    }
  }
  return events;
}

/** Resolves when `count` calls of `mark` have happened. */
function barrier(count: number): { mark(): void; reached: Promise<void> } {
  let left = count;
  let open!: () => void;
  const reached = new Promise<void>((r) => {
    open = r;
  });
  return {
    mark: () => {
      if (--left === 0) open();
    },
    reached,
  };
}

const postStream = (method: string, args: unknown[]) =>
  fetch(`${served.url}/tick/${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(args),
  });

/** Polls for the pid a call wrote to `file` as it started. */
async function pidIn(file: string): Promise<number> {
  let pid = 0;
  await eventually(
    () => {
      try {
        pid = Number(readFileSync(file, 'utf8'));
      } catch {
        pid = 0;
      }
      return pid > 0;
    },
    30_000,
    `a pid in ${file}`,
  );
  return pid;
}

describe('a frozen or killed process replica: every stream ends, in its protocol', () => {
  it('SIGSTOP under load: streams on the frozen replica end with `event: error`, the others and later ones succeed, it is replaced', async () => {
    const N = 8;
    const started = barrier(N);
    /** The replica of each stream, in the order their first items arrived. */
    const firstPids: number[] = [];
    /** When each stream's error event arrived (ms since the epoch), for the streams that got one. */
    const errorAt: number[] = [];
    const outcomes = Array.from({ length: N }, async () => {
      let first = true;
      const events = await readSse(await postStream('ticks', [40, 100]), (e) => {
        if (first) {
          firstPids.push(JSON.parse(e.data).pid);
          started.mark();
        }
        first = false;
        if (e.event === 'error') errorAt.push(Date.now());
      });
      return events;
    });
    await started.reached;
    // The replica of the stream that started last (power of two choices puts some on each replica).
    const frozen = firstPids.at(-1)!;
    const frozenAt = Date.now();
    signal(frozen, 'SIGSTOP');
    // Sent after the freeze: those routed to the frozen replica (the router does not know yet) wait there
    // unaccepted, and are retried on the other one when the frozen one is killed.
    const later = Array.from({ length: 4 }, () => postStream('ticks', [3, 10]).then((r) => readSse(r)));
    const all = await Promise.all([...outcomes, ...later]);
    const waitedS = (Date.now() - frozenAt) / 1000;

    let errors = 0;
    for (const events of all) {
      const last = events.at(-1)!;
      const items = events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data));
      if (last.event === 'error') {
        errors++;
        expect(JSON.parse(last.data).error).toMatchObject({ code: 'ACTOR_DIED' });
        expect(items.every((t) => t.pid === frozen)).toBe(true);
      } else {
        expect(last.event).toBe('end');
        expect(items.length).toBeGreaterThan(0);
      }
    }
    expect(errors).toBeGreaterThan(0);
    // Later streams never failed: nothing of theirs had reached the client.
    for (const events of all.slice(N)) {
      expect(events.at(-1)!.event).toBe('end');
      const pids = events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data).pid);
      expect(pids).toHaveLength(3);
      expect(pids).not.toContain(frozen);
    }
    // The frozen replica's streams fail once a health check times out: within period + timeout (1.5 s)
    // of the freeze, i.e. about twice the health-check timeout. Asserted with room for a loaded machine
    // (a factor 2 over that), never as an exact time; the figure is printed for the record.
    const frozenWaitS = (Math.max(...errorAt) - frozenAt) / 1000;
    console.log(
      `frozen replica's streams ended ${frozenWaitS.toFixed(2)} s after SIGSTOP (health-check timeout ${HEALTH_CHECK_TIMEOUT_S} s)`,
    );
    expect(frozenWaitS).toBeLessThan(4 * HEALTH_CHECK_TIMEOUT_S);
    // A generous bound in health-check timeouts (a 4 s stream, then 1.5 s to notice the freeze): a
    // graceful stop of the frozen replica would have kept its streams for gracefulShutdownTimeoutS (30 s).
    expect(waitedS).toBeLessThan(4 + 10 * HEALTH_CHECK_TIMEOUT_S);
    await eventually(
      () => {
        const pids = running('tick');
        return pids.length === 2 && !pids.includes(frozen);
      },
      60_000,
      'the frozen replica replaced',
    );
  }, 120_000);

  it('SIGKILL mid-stream: a raw event stream ends with `event: error`, an NDJSON one with an error line', async () => {
    for (const kind of ['sse', 'ndjson'] as const) {
      const opened = barrier(4);
      const firstPid: number[] = [];
      const read = async () => {
        const res = await fetch(`${served.url}/raw/${kind}?n=40&every=100`);
        expect(res.status).toBe(200);
        const decoder = new TextDecoder();
        let text = '';
        for await (const bytes of res.body as unknown as AsyncIterable<Uint8Array>) {
          const before = text.length;
          text += decoder.decode(bytes, { stream: true });
          if (before === 0) {
            firstPid.push(Number(/"pid":(\d+)/.exec(text)![1]));
            opened.mark();
          }
        }
        return text;
      };
      const streams = Array.from({ length: 4 }, read);
      await opened.reached;
      const victim = firstPid[0]!;
      signal(victim, 'SIGKILL');
      const texts = await Promise.all(streams);
      for (const text of texts) {
        const victimStream = text.includes(`"pid":${victim}`);
        if (kind === 'sse') {
          const events = parseSse(text);
          if (victimStream) {
            expect(events.at(-1)!.event).toBe('error');
            expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ error: { code: 'ACTOR_DIED' } });
            expect(events.slice(0, -1).every((e) => e.event === 'message')).toBe(true);
          } else {
            expect(events).toHaveLength(41);
            expect(events.at(-1)!.data).toBe('[DONE]');
          }
        } else {
          const lines = text
            .trimEnd()
            .split('\n')
            .map((l) => JSON.parse(l));
          if (victimStream) expect(lines.at(-1)).toMatchObject({ error: { code: 'ACTOR_DIED' } });
          else expect(lines).toHaveLength(40);
        }
      }
      await eventually(() => running('raw').length === 2 && !running('raw').includes(victim), 60_000, 'replaced');
    }
  }, 180_000);

  it('SIGKILL mid-stream: core Serve.Stream over gRPC ends with UNAVAILABLE', async () => {
    const opened = barrier(2);
    const firstPid: number[] = [];
    const ends = Array.from({ length: 2 }, () => {
      const call = client.Stream!({
        application: 'tick',
        method: 'ticks',
        payload: Buffer.from(JSON.stringify([40, 100])),
      });
      let pid = 0;
      return new Promise<{ pid: number; error?: grpc.ServiceError; count: number }>((resolve) => {
        let count = 0;
        call.on('data', (d: { payload: Buffer }) => {
          if (count++ === 0) {
            pid = JSON.parse(d.payload.toString()).pid;
            firstPid.push(pid);
            opened.mark();
          }
        });
        call.on('error', (error: grpc.ServiceError) => resolve({ pid, error, count }));
        call.on('end', () => resolve({ pid, count }));
      });
    });
    await opened.reached;
    const victim = firstPid[0]!;
    signal(victim, 'SIGKILL');
    const results = await Promise.all(ends);
    for (const r of results) {
      if (r.pid === victim) {
        expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
        expect(r.error?.metadata.get('flotilla-error-code')).toEqual(['ACTOR_DIED']);
      } else {
        expect(r.error).toBeUndefined();
        expect(r.count).toBe(40);
      }
    }
  }, 120_000);

  it('a stream whose replica dies before anything reached the client is retried on the other replica', async () => {
    // Through the router (the call was accepted, nothing yielded yet) and through the raw-HTTP proxy (the
    // head had arrived, no chunk yet).
    const file = path.join(dir, 'generic-start');
    writeFileSync(file, '');
    const pending = postStream('ticks', [3, 10, file, 2000]).then((r) => readSse(r));
    const victim = await pidIn(file);
    signal(victim, 'SIGKILL');
    const events = await pending;
    expect(events.at(-1)!.event).toBe('end');
    const pids = events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data).pid);
    expect(pids).toHaveLength(3);
    expect(pids.every((p) => p !== victim)).toBe(true);

    const rawFile = path.join(dir, 'raw-start');
    writeFileSync(rawFile, '');
    const rawPending = fetch(`${served.url}/raw/sse?n=3&every=10&delay=2000&file=${encodeURIComponent(rawFile)}`).then(
      async (r) => ({ status: r.status, events: await readSse(r) }),
    );
    const rawVictim = await pidIn(rawFile);
    signal(rawVictim, 'SIGKILL');
    const raw = await rawPending;
    expect(raw.status).toBe(200);
    expect(raw.events.map((e) => e.data).at(-1)).toBe('[DONE]');
    const rawPids = raw.events.slice(0, -1).map((e) => JSON.parse(e.data).pid);
    expect(rawPids).toHaveLength(3);
    expect(rawPids.every((p) => p !== rawVictim)).toBe(true);
  }, 120_000);
});
