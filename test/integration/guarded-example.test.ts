/**
 * examples/guarded.ts as users run it (`serve run`, a child process): a PII guard in front of a
 * content-safety guard (LlmJudge on the bundled draft model) in front of LLMServer on the bundled
 * target, behind the OpenAI API and gRPC llm.proto. The judge is real; thresholds 1 and 0 make its
 * verdicts "never unsafe" and "always unsafe", so the test does not depend on what a story model
 * thinks of harm.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, describe, expect, it } from 'vitest';
import { type ServeRun, serveRun } from '../fixtures/apps/deploy-llm-harness.js';
import { repoRoot } from '../helpers/models.js';

const runs: ServeRun[] = [];
afterAll(async () => {
  await Promise.all(runs.map((r) => r.stop()));
});

async function start(...args: string[]): Promise<{ run: ServeRun; client: OpenAI }> {
  const run = await serveRun(['examples/guarded.ts:app', ...args], 120_000);
  runs.push(run);
  return { run, client: new OpenAI({ baseURL: `${run.url}/v1`, apiKey: 'none', maxRetries: 0 }) };
}

function metric(text: string, name: string, labels: Record<string, string>): number {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('examples/guarded.ts through serve run', () => {
  it('serves the OpenAI API with prompts redacted and judged, and decisions on /metrics', async () => {
    const { run, client } = await start('threshold=1');
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['flotilla-stories']);
    const req = { model: 'flotilla-stories', max_tokens: 8, temperature: 0 };
    const a = await client.completions.create({ ...req, prompt: 'Mail ana@example.com: once upon a time' });
    const b = await client.completions.create({ ...req, prompt: 'Mail [EMAIL]: once upon a time' });
    expect(a.usage!.prompt_tokens).toBe(b.usage!.prompt_tokens);
    expect(a.choices[0]!.text).toBe(b.choices[0]!.text);
    expect(a.choices[0]!.text.length).toBeGreaterThan(0);

    let streamed = '';
    for await (const chunk of await client.completions.create({ ...req, prompt: 'Once upon a time', stream: true })) {
      streamed += chunk.choices[0]?.text ?? '';
    }
    const whole = await client.completions.create({ ...req, prompt: 'Once upon a time' });
    expect(streamed).toBe(whole.choices[0]!.text);

    const text = await (await fetch(`${run.url}/metrics`)).text();
    expect(
      metric(text, 'flotilla_safety_decisions_total', { where: 'prompt', decision: 'allow' }),
    ).toBeGreaterThanOrEqual(4);
    expect(
      metric(text, 'flotilla_safety_decisions_total', { where: 'output', decision: 'allow' }),
    ).toBeGreaterThanOrEqual(4);
    expect(metric(text, 'flotilla_safety_classifier_seconds_count', { where: 'prompt' })).toBeGreaterThanOrEqual(4);
    expect(metric(text, 'flotilla_pii_detections_total', { kind: 'email', where: 'prompt' })).toBe(1);
    expect(text).not.toContain('ana@example.com');
  }, 240_000);

  it('refuses unsafe prompts in each API and cuts unsafe output', async () => {
    const { run, client } = await start('threshold=0');
    const err = await client.chat.completions
      .create({ model: 'flotilla-stories', messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 4 })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('content_filter');
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('messages');

    const tgi = await fetch(`${run.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 'Once upon a time', parameters: { max_new_tokens: 4 } }),
    });
    expect(tgi.status).toBe(422);
    expect(await tgi.json()).toMatchObject({ error_type: 'validation' });

    const def = protoLoader.loadSync(path.join(repoRoot, 'protos/llm.proto'), { keepCase: true, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
    };
    const grpcClient = new pkg.flotilla.llm.v1.Llm(run.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client &
      Record<string, (...a: unknown[]) => unknown>;
    const code = await new Promise<number>((resolve) =>
      grpcClient.Generate!({ prompt: 'Once upon a time', max_tokens: 4 }, (e: grpc.ServiceError | null) =>
        resolve(e?.code ?? 0),
      ),
    );
    grpcClient.close();
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);

    const out = await start('threshold=0', 'safety_on=outputs', 'window=8');
    let text = '';
    let finish: string | null = null;
    for await (const chunk of await out.client.completions.create({
      model: 'flotilla-stories',
      prompt: 'Once upon a time',
      max_tokens: 16,
      temperature: 0,
      stream: true,
    })) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe('');
    expect(finish).toBe('content_filter');
  }, 360_000);
});
