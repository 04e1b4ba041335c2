/**
 * PiiGuard as a graph stage over real deployments: in front of an LLMServer on stories260K (thread
 * replicas) and of a scripted streamer in a child process; prompts redacted or refused before they
 * reach the model, outputs redacted across streamed chunks, counts in the guard's metrics.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Ingress, startServe, type ServeInstance } from '@flotilla/core';
import { describeWithModels, models } from '../helpers/models.js';
import { guardedModel, guardedScript, Scripted } from '../fixtures/apps/pii-apps.js';

let instance: ServeInstance;
let ingress: Ingress;

interface Reply {
  choices: Array<{ text: string; finish_reason: string }>;
  usage?: { prompt_tokens: number };
  seen?: string;
}

describeWithModels('PiiGuard in front of real deployments', () => {
  beforeAll(async () => {
    instance = await startServe({
      applications: [
        { name: 'redact', routePrefix: '/redact', app: guardedModel(models.stories260K, { mode: 'redact' }) },
        { name: 'block', routePrefix: '/block', app: guardedModel(models.stories260K, { mode: 'block' }) },
        { name: 'script', routePrefix: '/script', app: guardedScript({ mode: 'redact' }) },
        { name: 'scriptblock', routePrefix: '/scriptblock', app: guardedScript({ mode: 'block' }) },
      ],
    });
    ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false, events: instance.events });
  }, 120_000);
  afterAll(async () => {
    await ingress?.close();
    await instance?.shutdown();
  });

  it('redacts a prompt before the model sees it (the model is charged for the redacted text)', async () => {
    const model = instance.getHandle('redact', 'PiiModel');
    const guard = instance.getHandle('redact');
    const raw = 'Lily wrote to lily@example.com and';
    const req = { prompt: raw, max_tokens: 4, temperature: 0 };
    const viaGuard = (await guard.grpcGenerate(req)) as Reply;
    const redacted = (await model.grpcGenerate({ ...req, prompt: 'Lily wrote to [EMAIL] and' })) as Reply;
    const unguarded = (await model.grpcGenerate(req)) as Reply;
    expect(viaGuard.usage!.prompt_tokens).toBe(redacted.usage!.prompt_tokens);
    expect(viaGuard.usage!.prompt_tokens).not.toBe(unguarded.usage!.prompt_tokens);
    expect(viaGuard.choices[0]!.text).toBe(redacted.choices[0]!.text);
  }, 60_000);

  it('refuses a prompt in block mode with the kinds and the parameter, never the values', async () => {
    const guard = instance.getHandle('block');
    const err = await guard
      .grpcGenerate({ messages: [{ role: 'user', content: 'my card is 4111 1111 1111 1111' }], max_tokens: 4 })
      .then(
        () => null,
        (e: unknown) => e as Error & { code: string; httpStatus: number; data: Record<string, unknown> },
      );
    expect(err).not.toBeNull();
    expect(err!.code).toBe('BAD_REQUEST');
    expect(err!.httpStatus).toBe(400);
    expect(err!.data).toMatchObject({ code: 'E_PII_BLOCKED', param: 'messages', kinds: ['card'] });
    expect(err!.message).not.toContain('4111');
    // A clean prompt goes through.
    const ok = (await guard.grpcGenerate({ prompt: 'Once upon a time', max_tokens: 3, temperature: 0 })) as Reply;
    expect(ok.choices[0]!.text.length).toBeGreaterThan(0);
  }, 60_000);

  it('redacts values split across streamed chunks, and whole replies', async () => {
    const guard = instance.getHandle('script');
    let text = '';
    let last: { finished?: boolean; finish_reason?: string } = {};
    for await (const chunk of guard.stream.grpcGenerateStream({ prompt: 'hi' }) as AsyncIterable<{
      text: string;
      finished?: boolean;
      finish_reason?: string;
    }>) {
      text += chunk.text;
      last = chunk;
    }
    const expected = 'Sure: write to [EMAIL] or call [PHONE]; card [CARD]. Bye!';
    expect(text).toBe(expected);
    expect(last).toMatchObject({ finished: true, finish_reason: 'stop' });
    const whole = (await guard.grpcGenerate({ prompt: 'hi' })) as Reply;
    expect(whole.choices[0]!.text).toBe(expected);
    expect(Scripted.reply).toContain('ana.lee@example.com');
  }, 60_000);

  it("ends a stream with finish_reason 'content_filter' before the first value in block mode", async () => {
    const guard = instance.getHandle('scriptblock');
    let text = '';
    const chunks: Array<{ finished?: boolean; finish_reason?: string }> = [];
    for await (const chunk of guard.stream.grpcGenerateStream({ prompt: 'hi' }) as AsyncIterable<{
      text: string;
      finished?: boolean;
      finish_reason?: string;
    }>) {
      text += chunk.text;
      chunks.push(chunk);
    }
    expect(text).toBe('Sure: write to ');
    expect(chunks.at(-1)).toMatchObject({ finished: true, finish_reason: 'content_filter' });
    expect(chunks.filter((c) => c.finished)).toHaveLength(1);
  }, 60_000);

  it('counts detections per kind on /metrics, without values', async () => {
    const text = await (await fetch(`${ingress.http!.url}/metrics`)).text();
    const lines = text
      .split('\n')
      .filter(
        (l) =>
          l.startsWith('flotilla_pii_detections_total{') && l.includes('where="output"') && l.includes('app="script"'),
      );
    const byKind = Object.fromEntries(lines.map((l) => [/kind="(\w+)"/.exec(l)![1], Number(l.split(' ').at(-1))]));
    expect(byKind).toEqual({ email: 2, phone: 2, card: 2 });
    expect(text).not.toContain('example.com');
  }, 30_000);

  it('serves the OpenAI API in front of LLMServer: prompts redacted, refusals in OpenAI shape', async () => {
    const redact = new OpenAI({ baseURL: `${ingress.http!.url}/redact/v1`, apiKey: 'none', maxRetries: 0 });
    const viaGuard = await redact.completions.create({
      model: 'stories260K',
      prompt: 'Lily wrote to lily@example.com and',
      max_tokens: 4,
      temperature: 0,
    });
    const direct = (await instance
      .getHandle('redact', 'PiiModel')
      .grpcGenerate({ prompt: 'Lily wrote to [EMAIL] and', max_tokens: 4, temperature: 0 })) as Reply;
    expect(viaGuard.usage!.prompt_tokens).toBe(direct.usage!.prompt_tokens);
    expect(viaGuard.choices[0]!.text).toBe(direct.choices[0]!.text);

    const block = new OpenAI({ baseURL: `${ingress.http!.url}/block/v1`, apiKey: 'none', maxRetries: 0 });
    const err = await block.chat.completions
      .create({
        model: 'stories260K',
        messages: [{ role: 'user', content: 'call me on +1 212-555-0101' }],
        max_tokens: 4,
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.status).toBe(400);
    expect(e.code).toBe('pii_blocked');
    expect(e.param).toBe('messages');
    expect(e.message).not.toContain('555');
  }, 60_000);

  it('redacts streamed and whole OpenAI replies over HTTP', async () => {
    const client = new OpenAI({ baseURL: `${ingress.http!.url}/script/v1`, apiKey: 'none', maxRetries: 0 });
    const expected = 'Sure: write to [EMAIL] or call [PHONE]; card [CARD]. Bye!';
    const whole = await client.completions.create({ model: 'scripted', prompt: 'hi' });
    expect(whole.choices[0]!.text).toBe(expected);
    let text = '';
    let finish: string | null = null;
    for await (const chunk of await client.completions.create({ model: 'scripted', prompt: 'hi', stream: true })) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(expected);
    expect(finish).toBe('stop');

    const blocking = new OpenAI({ baseURL: `${ingress.http!.url}/scriptblock/v1`, apiKey: 'none', maxRetries: 0 });
    text = '';
    for await (const chunk of await blocking.completions.create({ model: 'scripted', prompt: 'hi', stream: true })) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe('Sure: write to ');
    expect(finish).toBe('content_filter');
  }, 60_000);

  it('counts no request errors for requests that completed (no CANCELLED from closing a finished stream)', async () => {
    const client = new OpenAI({ baseURL: `${ingress.http!.url}/redact/v1`, apiKey: 'none', maxRetries: 0 });
    for (let i = 0; i < 3; i++) {
      await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 2 });
    }
    await new Promise((r) => setTimeout(r, 500));
    const text = await (await fetch(`${ingress.http!.url}/metrics`)).text();
    const cancelled = text
      .split('\n')
      .filter((l) => l.startsWith('flotilla_deployment_request_errors_total{') && l.includes('code="CANCELLED"'));
    expect(cancelled).toEqual([]);
  }, 60_000);
});
