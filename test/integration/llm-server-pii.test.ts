/**
 * LLMServer's built-in PII guard (option `pii`, `pii=` on examples/llm-server.ts) through `serve run` on
 * stories260K: after the key check, prompts with personal data are refused in each API's shape (block)
 * or redacted before tokenizing (redact: the model is charged for the redacted text), counted on
 * /metrics without values.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, expect, it } from 'vitest';
import { type ServeRun, serveRun } from '../fixtures/apps/deploy-llm-harness.js';
import { describeWithModels, models, repoRoot } from '../helpers/models.js';

const KEY = 'pii-test-key-000001';
const METRICS_KEY = 'pii-metrics-key-0001';
const runs: ServeRun[] = [];
afterAll(async () => {
  await Promise.all(runs.map((r) => r.stop()));
});

async function start(mode: string) {
  const run = await serveRun([
    'examples/llm-server.ts:app',
    `model=${models.stories260K}`,
    `api_keys=${KEY}`,
    `metrics_keys=${METRICS_KEY}`,
    `pii=${mode}`,
  ]);
  runs.push(run);
  return { run, client: new OpenAI({ baseURL: `${run.url}/v1`, apiKey: KEY, maxRetries: 0 }) };
}

describeWithModels('LLMServer pii option through serve run (stories260K)', () => {
  it('block: refuses personal data after the key check, in OpenAI, TGI and gRPC shapes', async () => {
    const { run, client } = await start('block');
    const anonymous = new OpenAI({ baseURL: `${run.url}/v1`, apiKey: 'wrong-key-0000000', maxRetries: 0 });
    const unauth = await anonymous.completions
      .create({ model: 'stories260K', prompt: 'mail bo@example.com', max_tokens: 2 })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(unauth).toBeInstanceOf(OpenAI.AuthenticationError);

    const err = await client.chat.completions
      .create({ model: 'stories260K', messages: [{ role: 'user', content: 'my SSN is 123-45-6789' }], max_tokens: 2 })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('pii_blocked');
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).message).not.toContain('6789');

    const tgi = await fetch(`${run.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ inputs: 'call +1 212-555-0101', parameters: { max_new_tokens: 2 } }),
    });
    expect(tgi.status).toBe(422);
    expect(await tgi.json()).toMatchObject({ error_type: 'validation' });

    const def = protoLoader.loadSync(path.join(repoRoot, 'protos/llm.proto'), { keepCase: true, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
    };
    const g = new pkg.flotilla.llm.v1.Llm(run.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client &
      Record<string, (...a: unknown[]) => unknown>;
    const code = await new Promise<number>((resolve) =>
      g.Generate!({ api_key: KEY, prompt: 'card 4111 1111 1111 1111', max_tokens: 2 }, (e: grpc.ServiceError | null) =>
        resolve(e?.code ?? 0),
      ),
    );
    g.close();
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);

    // Every route that takes text: embeddings' input is checked; the Responses API (whose replies the
    // output filter cannot rewrite) is refused behind it rather than left unchecked.
    const emb = await client.embeddings
      .create({ model: 'stories260K', input: ['a story', 'write to bo@example.com'] })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(emb).toBeInstanceOf(OpenAI.BadRequestError);
    expect((emb as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('pii_blocked');
    const resp = await client.responses
      .create({ model: 'stories260K', input: 'Once upon a time', max_output_tokens: 4 })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(resp).toBeInstanceOf(OpenAI.BadRequestError);

    const ok = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 4 });
    expect(ok.choices[0]!.text.length).toBeGreaterThan(0);
  }, 180_000);

  it('redact: the model sees and is charged for the redacted prompt; counts on /metrics', async () => {
    const { run, client } = await start('redact');
    const req = { model: 'stories260K', max_tokens: 6, temperature: 0 };
    const a = await client.completions.create({ ...req, prompt: 'Lily wrote to lily@example.com and' });
    const b = await client.completions.create({ ...req, prompt: 'Lily wrote to [EMAIL] and' });
    expect(a.usage!.prompt_tokens).toBe(b.usage!.prompt_tokens);
    expect(a.choices[0]!.text).toBe(b.choices[0]!.text);
    const metrics = await (
      await fetch(`${run.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_KEY}` } })
    ).text();
    const line = metrics
      .split('\n')
      .find((l) => l.startsWith('flotilla_pii_detections_total{') && l.includes('kind="email"'));
    expect(line).toBeDefined();
    expect(Number(line!.split(' ').at(-1))).toBe(1);
    expect(metrics).not.toContain('lily@example.com');
  }, 180_000);
});
