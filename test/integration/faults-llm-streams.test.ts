/**
 * LLMServer streams whose replica freezes (SIGSTOP) or dies (SIGKILL) mid-way, through the real proxies:
 * the official `openai` client's stream throws an APIError (the proxy writes OpenAI's error event and
 * `[DONE]`), a TGI stream ends with TGI's `{ error, error_type }` event, an llm.proto GenerateStream
 * with UNAVAILABLE; streams on the other replica finish, and requests sent after the freeze succeed.
 * Two process replicas of stories260K with short health checks (test/fixtures/apps/frozen-llm.ts).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { LLM_GRPC_SERVICE } from '../../packages/deployments/src/index.js';
import { describeWithModels, models } from '../helpers/models.js';
import { eventually, serveForTest, type Served } from '../helpers/ingress.js';
import { HEALTH_CHECK_TIMEOUT_S, pacedLlm } from '../fixtures/apps/frozen-llm.js';

let served: Served;
let openai: OpenAI;
let grpcClient: grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientReadableStream<GrpcMsg>>;
const touched = new Set<number>();
/** Each stream gets its own prompt: LLMServer routes by prompt prefix, and one prompt would always pick one replica. */
let prompts = 0;
const prompt = () => `Once upon a time, story ${++prompts}`;

interface GrpcMsg {
  id: string;
  text: string;
  finished: boolean;
}

/** How a stream ended: 'done' (its protocol's normal end) or the error it got, with the replica that served it. */
interface Outcome {
  pid: number;
  chunks: number;
  done: boolean;
  error?: unknown;
}

type TgiOutcome = Outcome & { last: Record<string, unknown> };

/** A stream whose first chunk has arrived: the replica serving it, when, and how it will end. */
interface Opened<O> {
  pid: number;
  openedAt: number;
  rest: Promise<O>;
}

/**
 * The stream that opened last: still far from its end when its replica is stopped a moment later, so its
 * replica is the one to stop. (The first one may already be done if the other replica was still loading
 * the model when the streams were opened.)
 */
function newest<O>(opened: Opened<O>[]): Opened<O> {
  return opened.reduce((a, b) => (b.openedAt > a.openedAt ? b : a));
}

function running(): number[] {
  const dep = served.instance.status().applications[0]!.deployments[0]!;
  return dep.replicas.filter((r) => r.state === 'RUNNING').map((r) => r.pid!);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  touched.add(pid);
  process.kill(pid, sig);
}

/** An OpenAI chat stream; resolves once its first chunk has arrived (the head leaves with it), with the rest to read. */
async function openaiStream(): Promise<Opened<Outcome>> {
  const { data: stream, response } = await openai.chat.completions
    .create({
      model: 'stories260K',
      messages: [{ role: 'user', content: prompt() }],
      max_tokens: 100,
      stream: true,
      ignore_eos: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming)
    .withResponse();
  const pid = Number(response.headers.get('x-replica-pid'));
  const rest = (async (): Promise<Outcome> => {
    let chunks = 0;
    let done = false;
    try {
      for await (const chunk of stream) {
        chunks++;
        if (chunk.choices[0]?.finish_reason) done = true;
      }
      return { pid, chunks, done };
    } catch (error) {
      return { pid, chunks, done, error };
    }
  })();
  return { pid, openedAt: performance.now(), rest };
}

/** A TGI /generate_stream; resolves once its first event has arrived. */
async function tgiStream(): Promise<Opened<TgiOutcome>> {
  const res = await fetch(`${served.url}/generate_stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: prompt(), parameters: { max_new_tokens: 100 } }),
  });
  expect(res.status).toBe(200);
  const pid = Number(res.headers.get('x-replica-pid'));
  const rest = (async () => {
    const text = await res.text();
    const events = text
      .split('\n\n')
      .filter(Boolean)
      .map((e) => JSON.parse(e.replace(/^data: /, '')) as Record<string, unknown>);
    const last = events.at(-1)!;
    return { pid, chunks: events.length, done: typeof last.generated_text === 'string', last };
  })();
  return { pid, openedAt: performance.now(), rest };
}

/** A GenerateStream; resolves once its first message has arrived. */
function grpcStream(): Promise<Opened<Outcome>> {
  const call = grpcClient.GenerateStream!({ prompt: prompt(), max_tokens: 100, ignore_eos: true });
  return new Promise((resolveFirst, rejectFirst) => {
    let pid = 0;
    let chunks = 0;
    let done = false;
    let finish!: (o: Outcome) => void;
    const rest = new Promise<Outcome>((r) => {
      finish = r;
    });
    call.on('data', (m: GrpcMsg) => {
      if (chunks++ === 0) {
        pid = Number(m.id.split('@')[1]);
        resolveFirst({ pid, openedAt: performance.now(), rest });
      }
      if (m.finished) done = true;
    });
    call.on('error', (error: grpc.ServiceError) => {
      if (chunks === 0) rejectFirst(error);
      finish({ pid, chunks, done, error });
    });
    call.on('end', () => finish({ pid, chunks, done }));
  });
}

describeWithModels('LLMServer streams when a process replica freezes or dies (stories260K)', () => {
  beforeAll(async () => {
    served = await serveForTest([{ name: 'llm', routePrefix: '/', app: pacedLlm(models.stories260K) }], {
      grpcServices: [{ ...LLM_GRPC_SERVICE, app: 'llm' }],
    });
    openai = new OpenAI({ baseURL: `${served.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const def = protoLoader.loadSync(LLM_GRPC_SERVICE.protoPath, { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
    };
    grpcClient = new pkg.flotilla.llm.v1.Llm(
      served.grpcAddress,
      grpc.credentials.createInsecure(),
    ) as typeof grpcClient;
    await eventually(() => running().length === 2, 60_000, 'two replicas');
  }, 120_000);
  afterAll(async () => {
    grpcClient?.close();
    await served?.close();
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
    await eventually(() => running().length === 2, 90_000, 'replacements');
  }, 120_000);

  it('SIGSTOP under load: streams on the frozen replica end with their protocol error, the others and later ones finish', async () => {
    const openai = await Promise.all(Array.from({ length: 4 }, openaiStream));
    const tgi = await Promise.all(Array.from({ length: 4 }, tgiStream));
    const cut = newest<Outcome>([...openai, ...tgi]);
    const victim = cut.pid;
    const frozenAt = Date.now();
    signal(victim, 'SIGSTOP');
    // After the freeze: whatever went to the frozen replica waits there unanswered and is retried on the other.
    const later = await Promise.all(Array.from({ length: 4 }, openaiStream));
    const outcomes = await Promise.all([...openai, ...tgi].map((o) => o.rest));
    const laterOutcomes = await Promise.all(later.map((o) => o.rest));
    const waitedS = (Date.now() - frozenAt) / 1000;

    outcomes.slice(0, 4).forEach((o) => expectOpenAi(o, victim));
    outcomes.slice(4).forEach((o) => expectTgi(o as TgiOutcome, victim));
    expect((await cut.rest).done).toBe(false);
    for (const o of laterOutcomes) {
      expect(o.pid).not.toBe(victim);
      expect(o.error).toBeUndefined();
      expect(o.done).toBe(true);
    }
    // 100 tokens at 30 ms, plus up to 1.5 s to notice the freeze: a generous bound in health-check
    // timeouts, far below the 30 s a graceful stop of the frozen replica would have kept its streams.
    expect(waitedS).toBeLessThan(10 + 10 * HEALTH_CHECK_TIMEOUT_S);
    await eventually(
      () => running().length === 2 && !running().includes(victim),
      90_000,
      'the frozen replica replaced',
    );
  }, 180_000);

  it('SIGKILL mid-stream: the openai client throws an APIError', async () => {
    const opened = await Promise.all(Array.from({ length: 2 }, openaiStream));
    const cut = newest(opened);
    signal(cut.pid, 'SIGKILL');
    const outcomes = await Promise.all(opened.map((o) => o.rest));
    outcomes.forEach((o) => expectOpenAi(o, cut.pid));
    expect((await cut.rest).error).toBeInstanceOf(OpenAI.APIError);
  }, 120_000);

  it("SIGKILL mid-stream: a TGI stream ends with TGI's error event", async () => {
    const opened = await Promise.all(Array.from({ length: 2 }, tgiStream));
    const cut = newest(opened);
    signal(cut.pid, 'SIGKILL');
    const outcomes = await Promise.all(opened.map((o) => o.rest));
    outcomes.forEach((o) => expectTgi(o, cut.pid));
    expect((await cut.rest).done).toBe(false);
  }, 120_000);

  it('SIGKILL mid-stream: an llm.proto GenerateStream ends with UNAVAILABLE', async () => {
    const opened = await Promise.all(Array.from({ length: 2 }, grpcStream));
    const cut = newest(opened);
    signal(cut.pid, 'SIGKILL');
    const outcomes = await Promise.all(opened.map((o) => o.rest));
    for (const o of outcomes) {
      const seen = summary(o, cut.pid);
      if (o.error !== undefined) {
        expect(o.pid, seen).toBe(cut.pid);
        expect((o.error as grpc.ServiceError).code, seen).toBe(grpc.status.UNAVAILABLE);
        expect((o.error as grpc.ServiceError).metadata.get('flotilla-error-code')).toEqual(['ACTOR_DIED']);
      } else {
        expect(o.done, seen).toBe(true);
      }
    }
    expect((await cut.rest).error).toBeDefined();
  }, 120_000);
});

function summary(o: Outcome, victim: number): string {
  return JSON.stringify({ ...o, error: o.error === undefined ? undefined : String(o.error), victim });
}

/**
 * A stream ends in OpenAI's protocol: finished (a finish_reason), or with the APIError of the error
 * event, only on the replica that was stopped; never cut short silently.
 */
function expectOpenAi(o: Outcome, victim: number): void {
  const seen = summary(o, victim);
  if (o.error !== undefined) {
    expect(o.pid, seen).toBe(victim);
    expect(o.error, seen).toBeInstanceOf(OpenAI.APIError);
    expect((o.error as InstanceType<typeof OpenAI.APIError>).code).toBe('actor_died');
    expect((o.error as Error).message).toMatch(/actor died/);
    expect(o.done).toBe(false);
  } else {
    expect(o.done, seen).toBe(true);
  }
}

/** The same in TGI's protocol: a last event with generated_text, or the error event. */
function expectTgi(o: TgiOutcome, victim: number): void {
  const seen = summary(o, victim);
  if (!o.done) {
    expect(o.pid, seen).toBe(victim);
    expect(o.last, seen).toEqual({ error: expect.stringMatching(/actor died/), error_type: 'incomplete_generation' });
    expect(o.chunks).toBeGreaterThan(1);
  }
}
