/**
 * examples/speculative.ts, examples/hybrid-router.ts and examples/cached-llm.ts as the README runs them:
 * `serve run FILE:app` as a child process (gRPC on), then the official `openai` client against each —
 * completions and chat, whole and streamed. The speculative graph's greedy text equals the target model's
 * alone (the same LLMEngine on the same files, in this process); the hybrid and cached graphs also answer
 * llm.proto over gRPC (two LLMServers behind one ingress once failed at start with grpc-js's "Method handler
 * ... already provided").
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LLMEngine } from '@flotilla/engine';
import { greedyText, serveExample, speculativeTarget } from '../helpers/example-servers.js';
import { describeWithModels, repoRoot } from '../helpers/models.js';

type Reply = { choices: Array<{ text: string; finish_reason: string }>; usage: { total_tokens: number } };

function llmClient(address: string) {
  const def = protoLoader.loadSync(path.join(repoRoot, 'protos/llm.proto'), {
    keepCase: true,
    longs: Number,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
  };
  const client = new pkg.flotilla.llm.v1.Llm(address, grpc.credentials.createInsecure()) as grpc.Client &
    Record<string, (...args: unknown[]) => unknown>;
  const generate = (req: Record<string, unknown>) =>
    new Promise<Reply>((resolve, reject) =>
      client.Generate!(req, (err: grpc.ServiceError | null, reply: Reply) => (err ? reject(err) : resolve(reply))),
    );
  return { client, generate };
}

/** The four ways the openai client asks: completion and chat, whole and streamed; returns each text. */
async function fourWays(client: OpenAI, model: string, prompt: string, maxTokens: number) {
  const messages = [{ role: 'user' as const, content: prompt }];
  const completion = await client.completions.create({ model, prompt, max_tokens: maxTokens, temperature: 0 });
  let completionStream = '';
  const s1 = await client.completions.create({ model, prompt, max_tokens: maxTokens, temperature: 0, stream: true });
  for await (const c of s1) completionStream += c.choices[0]?.text ?? '';
  const chat = await client.chat.completions.create({ model, messages, max_tokens: maxTokens, temperature: 0 });
  let chatStream = '';
  let usage: OpenAI.CompletionUsage | undefined;
  const s2 = await client.chat.completions.create({
    model,
    messages,
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  for await (const c of s2) {
    chatStream += c.choices[0]?.delta?.content ?? '';
    if (c.usage) usage = c.usage;
  }
  return { completion, completionStream, chat, chatStream, usage };
}

describeWithModels('examples through serve run and the official openai client', () => {
  describe('examples/speculative.ts', () => {
    const server = serveExample('speculative.ts');
    let engine: LLMEngine;
    beforeAll(async () => {
      engine = await speculativeTarget();
    }, 200_000);
    afterAll(async () => {
      await engine?.dispose();
    });

    it('starts with gRPC on, lists its model, and its greedy text equals the target alone (completion and chat)', async () => {
      expect(server().grpcAddress).toMatch(/:\d+$/);
      const client = new OpenAI({ baseURL: `${server().url}/v1`, apiKey: 'none', maxRetries: 0 });
      expect((await client.models.list()).data.map((m) => m.id)).toEqual(['speculative']);
      for (const prompt of ['Once upon a time', 'The little dog']) {
        const r = await fourWays(client, 'speculative', prompt, 40);
        const alone = await greedyText(engine, prompt, 40);
        const aloneChat = await greedyText(engine, { messages: [{ role: 'user', content: prompt }] }, 40);
        expect(alone.length).toBeGreaterThan(10);
        expect(r.completion.choices[0]!.text).toBe(alone);
        expect(r.completionStream).toBe(alone);
        expect(r.chat.choices[0]!.message.content).toBe(aloneChat);
        expect(r.chatStream).toBe(aloneChat);
        expect(r.completion.usage?.completion_tokens).toBeGreaterThan(0);
        expect(r.usage?.total_tokens).toBe((r.usage?.prompt_tokens ?? 0) + (r.usage?.completion_tokens ?? 0));
      }
    }, 240_000);

    it('refuses what the pipeline does not do, in OpenAI shape; takes any model name', async () => {
      const client = new OpenAI({ baseURL: `${server().url}/v1`, apiKey: 'none', maxRetries: 0 });
      const err = await client.completions
        .create({ model: 'speculative', prompt: 'Hi', max_tokens: 4, n: 2 })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
      const stop = await client.completions
        .create({ model: 'speculative', prompt: 'Hi', max_tokens: 4, stop: ['.'] })
        .catch((e: unknown) => e);
      expect((stop as InstanceType<typeof OpenAI.BadRequestError>).status).toBe(400);
      // One graph: another name is taken as this one (as TGI and LLMServer; strictModelName gives vLLM's 404).
      const other = await client.completions.create({ model: 'other', prompt: 'Hi', max_tokens: 4, temperature: 0 });
      expect(other.model).toBe('speculative');
      expect(other.choices[0]!.text.length).toBeGreaterThan(0);
    }, 60_000);
  });

  describe('examples/hybrid-router.ts', () => {
    const server = serveExample('hybrid-router.ts');

    it('starts with gRPC on and answers the openai client; the router picks per request and says which', async () => {
      const client = new OpenAI({ baseURL: `${server().url}/v1`, apiKey: 'none', maxRetries: 0 });
      const ids = (await client.models.list()).data.map((m) => m.id);
      expect(ids[0]).toBe('hybrid');
      expect(ids).toHaveLength(3);
      for (const prompt of ['Sara had a red ball', 'Explain why the sky is blue']) {
        const r = await fourWays(client, 'hybrid', prompt, 16);
        expect(r.completion.choices[0]!.text.length).toBeGreaterThan(0);
        expect(r.completionStream).toBe(r.completion.choices[0]!.text);
        expect(r.chatStream).toBe(r.chat.choices[0]!.message.content);
      }
      const easy = await client.completions
        .create({ model: 'hybrid', prompt: 'Sara had a red ball', max_tokens: 4, temperature: 1 })
        .withResponse();
      const hard = await client.completions
        .create({ model: 'hybrid', prompt: 'Explain why the sky is blue', max_tokens: 4, temperature: 1 })
        .withResponse();
      expect(easy.response.headers.get('x-flotilla-model')).toBe('small');
      expect(hard.response.headers.get('x-flotilla-model')).toBe('large');
      // A model's own name reaches that model, whatever the classifier would say.
      const named = await client.completions
        .create({ model: ids[1]!, prompt: 'Explain why the sky is blue', max_tokens: 4 })
        .withResponse();
      expect(named.response.headers.get('x-flotilla-model')).toBe('small');
      const metrics = await (await fetch(`${server().url}/metrics`)).text();
      expect(metrics).toMatch(/flotilla_hybrid_decisions_total\{[^}]*model="small"[^}]*reason="classifier"/);
      expect(metrics).toMatch(/flotilla_hybrid_savings_usd_total\{[^}]*\} [0-9.e-]+/);
    }, 240_000);

    it('answers llm.proto over gRPC (both LLMServers behind one ingress)', async () => {
      const { client, generate } = llmClient(server().grpcAddress);
      try {
        const r = await generate({ prompt: 'Sara had a red ball', max_tokens: 8, temperature: 0 });
        expect(r.choices[0]!.text.length).toBeGreaterThan(0);
        expect(r.usage.total_tokens).toBeGreaterThan(8);
      } finally {
        client.close();
      }
    }, 60_000);
  });

  describe('examples/cached-llm.ts', () => {
    const server = serveExample('cached-llm.ts');

    it('starts with gRPC on, answers the openai client, and serves a repeated greedy request from the cache', async () => {
      const client = new OpenAI({ baseURL: `${server().url}/v1`, apiKey: 'none', maxRetries: 0 });
      const model = (await client.models.list()).data[0]!.id;
      const r = await fourWays(client, model, 'Once upon a time', 16);
      expect(r.completionStream).toBe(r.completion.choices[0]!.text);
      expect(r.chatStream).toBe(r.chat.choices[0]!.message.content);
      const again = await client.completions
        .create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0 })
        .withResponse();
      expect(again.response.headers.get('x-flotilla-cache')).toBe('hit');
      expect(again.data).toEqual(r.completion);
      const sampled = await client.completions
        .create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 1 })
        .withResponse();
      expect(sampled.response.headers.get('x-flotilla-cache')).toBeNull();
      const { client: grpcClient, generate } = llmClient(server().grpcAddress);
      try {
        const a = await generate({ prompt: 'Lily', max_tokens: 8, temperature: 0 });
        const b = await generate({ prompt: 'Lily', max_tokens: 8, temperature: 0 });
        expect(a.choices[0]!.text.length).toBeGreaterThan(0);
        expect(b).toEqual(a);
      } finally {
        grpcClient.close();
      }
      const metrics = await (await fetch(`${server().url}/metrics`)).text();
      expect(metrics).toMatch(/flotilla_response_cache_lookups_total\{[^}]*result="hit"[^}]*\} [2-9]/);
    }, 240_000);
  });
  describe('examples/llm-front.ts', () => {
    const server = serveExample('llm-front.ts');

    it('serves two graphs behind one endpoint chosen by model: the speculative one equals the target, the hybrid one routes', async () => {
      const client = new OpenAI({ baseURL: `${server().url}/v1`, apiKey: 'none', maxRetries: 0 });
      expect((await client.models.list()).data.map((m) => m.id)).toEqual(['speculative', 'hybrid']);
      const engine = await speculativeTarget();
      try {
        const prompt = 'Once upon a time';
        const r = await fourWays(client, 'speculative', prompt, 24);
        const alone = await greedyText(engine, prompt, 24);
        expect(r.completion.choices[0]!.text).toBe(alone);
        expect(r.chatStream).toBe(await greedyText(engine, { messages: [{ role: 'user', content: prompt }] }, 24));
      } finally {
        await engine.dispose();
      }
      for (const prompt of ['Sara had a red ball', 'Explain why the sky is blue']) {
        const h = await fourWays(client, 'hybrid', prompt, 12);
        expect(h.completion.choices[0]!.text.length).toBeGreaterThan(0);
        expect(h.completionStream).toBe(h.completion.choices[0]!.text);
        expect(h.chatStream).toBe(h.chat.choices[0]!.message.content);
      }
      const wrong = await client.completions
        .create({ model: 'other', prompt: 'Hi', max_tokens: 4 })
        .catch((e: unknown) => e);
      expect((wrong as InstanceType<typeof OpenAI.NotFoundError>).status).toBe(404);
      const metrics = await (await fetch(`${server().url}/metrics`)).text();
      expect(metrics).toMatch(/flotilla_hybrid_decisions_total\{[^}]*model="small"[^}]*reason="classifier"/);
      expect(metrics).toMatch(/flotilla_hybrid_decisions_total\{[^}]*model="large"[^}]*reason="classifier"/);
      expect(metrics).toMatch(/flotilla_response_cache_lookups_total\{[^}]*result="hit"[^}]*\} [1-9]/);
      const { client: grpcClient, generate } = llmClient(server().grpcAddress);
      try {
        const g = await generate({ model: 'hybrid', prompt: 'Lily', max_tokens: 8, temperature: 0 });
        expect(g.choices[0]!.text.length).toBeGreaterThan(0);
      } finally {
        grpcClient.close();
      }
    }, 240_000);
  });
});
