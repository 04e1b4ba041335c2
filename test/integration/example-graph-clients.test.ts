/**
 * Real clients, unmodified, against every example graph as the README runs it (`serve run FILE:app`, a child
 * process, gRPC on): the official `openai` client (completions and chat, whole and streamed) and Hugging Face's
 * `@huggingface/inference` InferenceClient with `endpointUrl` (textGeneration, which sends the endpoint URL as
 * `model`; textGenerationStream with TGI's details; chatCompletion, which sends 'tgi'). A single-graph
 * endpoint (speculative, hybrid router, cache) takes any model name as TGI does, its answers carrying a served
 * name; the speculative graph's greedy text equals the target's alone. examples/llm-front.ts serves two
 * graphs, so an unknown name stays vLLM's 404 model_not_found, from both clients.
 */
import { InferenceClient } from '@huggingface/inference';
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { greedyText, serveExample, speculativeTarget } from '../helpers/example-servers.js';
import { describeWithModels } from '../helpers/models.js';

const PROMPT = 'Once upon a time';
const MAX = 12;

interface Answers {
  completion: string;
  completionStream: string;
  chat: string;
  chatStream: string;
  hfText: string;
  hfFull: string;
  hfStream: string;
  hfStreamEvents: number;
  hfChat: string;
  /** The `model` of every answer, in order. */
  models: string[];
}

/** Every call of both clients, greedy, with a name this endpoint does not serve (the openai ones) or the HF client's own. */
async function askEverything(server: ServeRun): Promise<Answers> {
  const openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
  const hf = new InferenceClient(undefined, { endpointUrl: server.url });
  const models: string[] = [];
  const messages = [{ role: 'user' as const, content: PROMPT }];
  const base = { model: 'gpt-4o', max_tokens: MAX, temperature: 0 };

  const completion = await openai.completions.create({ ...base, prompt: PROMPT });
  models.push(completion.model);
  let completionStream = '';
  for await (const c of await openai.completions.create({ ...base, prompt: PROMPT, stream: true })) {
    completionStream += c.choices[0]?.text ?? '';
    models.push(c.model);
  }
  const chat = await openai.chat.completions.create({ ...base, messages });
  models.push(chat.model);
  let chatStream = '';
  for await (const c of await openai.chat.completions.create({ ...base, messages, stream: true })) {
    chatStream += c.choices[0]?.delta?.content ?? '';
    models.push(c.model);
  }

  // model: the endpoint URL; TGI's parameters, flattened by the client
  const whole = await hf.textGeneration({
    inputs: PROMPT,
    parameters: { max_new_tokens: MAX, do_sample: false, details: true },
  });
  const full = await hf.textGeneration({
    inputs: PROMPT,
    parameters: { max_new_tokens: MAX, temperature: 0, return_full_text: true },
  });
  let hfStream = '';
  let hfStreamEvents = 0;
  for await (const chunk of hf.textGenerationStream({
    inputs: PROMPT,
    parameters: { max_new_tokens: MAX, do_sample: false, details: true },
  })) {
    // As on TGI's /v1/completions, the events are OpenAI completion chunks.
    const c = chunk as unknown as { model: string; choices: { text: string }[] };
    hfStream += c.choices[0]?.text ?? '';
    hfStreamEvents++;
    models.push(c.model);
  }
  const hfChat = await hf.chatCompletion({ model: 'tgi', messages, max_tokens: MAX, temperature: 0 });
  models.push(hfChat.model);
  return {
    completion: completion.choices[0]!.text,
    completionStream,
    chat: chat.choices[0]!.message.content ?? '',
    chatStream,
    hfText: whole.generated_text,
    hfFull: full.generated_text,
    hfStream,
    hfStreamEvents,
    hfChat: hfChat.choices[0]!.message.content ?? '',
    models,
  };
}

/** Both clients agree with each other: the same greedy text however asked. */
function expectConsistent(a: Answers): void {
  expect(a.completion.length).toBeGreaterThan(0);
  expect(a.chat.length).toBeGreaterThan(0);
  expect(a.completionStream).toBe(a.completion);
  expect(a.hfText).toBe(a.completion);
  expect(a.hfFull).toBe(PROMPT + a.completion);
  expect(a.hfStream).toBe(a.completion);
  expect(a.hfStreamEvents).toBeGreaterThan(1);
  expect(a.chatStream).toBe(a.chat);
  expect(a.hfChat).toBe(a.chat);
}

async function targetAlone(prompt: string | { messages: { role: 'user'; content: string }[] }): Promise<string> {
  const engine = await speculativeTarget();
  try {
    return await greedyText(engine, prompt, MAX);
  } finally {
    await engine.dispose();
  }
}

describeWithModels('every example graph answers the openai and Hugging Face clients unmodified', () => {
  describe('examples/speculative.ts', () => {
    const server = serveExample('speculative.ts');

    it("takes any name (the endpoint URL, 'tgi', another) as 'speculative'; greedy text is the target's alone", async () => {
      expect(server().grpcAddress).toMatch(/:\d+$/);
      const a = await askEverything(server());
      expectConsistent(a);
      expect(new Set(a.models)).toEqual(new Set(['speculative']));
      expect(a.completion).toBe(await targetAlone(PROMPT));
      expect(a.chat).toBe(await targetAlone({ messages: [{ role: 'user', content: PROMPT }] }));
    }, 120_000);
  });

  describe('examples/hybrid-router.ts', () => {
    const server = serveExample('hybrid-router.ts');

    it('takes any name as the router (the classifier chooses); answers carry the answering model', async () => {
      const openai = new OpenAI({ baseURL: `${server().url}/v1`, apiKey: 'none', maxRetries: 0 });
      const ids = (await openai.models.list()).data.map((m) => m.id);
      expect(ids[0]).toBe('hybrid');
      const a = await askEverything(server());
      expectConsistent(a);
      // 'Once upon a time' is easy: the classifier picks the small model whatever the name.
      expect(new Set(a.models)).toEqual(new Set([ids[1]]));
      const routed = await openai.completions
        .create({ model: 'tgi', prompt: 'Explain why the sky is blue', max_tokens: 4, temperature: 0 })
        .withResponse();
      expect(routed.response.headers.get('x-flotilla-model')).toBe('large');
      expect(routed.data.model).toBe(ids[2]);
    }, 120_000);
  });

  describe('examples/cached-llm.ts', () => {
    const server = serveExample('cached-llm.ts');

    it('takes any name as the served model, through the cache', async () => {
      const openai = new OpenAI({ baseURL: `${server().url}/v1`, apiKey: 'none', maxRetries: 0 });
      const ids = (await openai.models.list()).data.map((m) => m.id);
      expect(ids).toHaveLength(1);
      const a = await askEverything(server());
      expectConsistent(a);
      expect(new Set(a.models)).toEqual(new Set(ids));
      // The cache keys on the whole body, `model` included (it cannot know that the model behind takes any name).
      const again = await openai.completions
        .create({ model: 'gpt-4o', prompt: PROMPT, max_tokens: MAX, temperature: 0 })
        .withResponse();
      expect(again.response.headers.get('x-flotilla-cache')).toBe('hit');
      expect(again.data.choices[0]!.text).toBe(a.completion);
      expect(again.data.model).toBe(ids[0]);
    }, 120_000);
  });

  describe('examples/llm-front.ts (two graphs: strict)', () => {
    const server = serveExample('llm-front.ts');

    it("answers an unknown name with vLLM's 404 model_not_found, from both clients; a graph's name works", async () => {
      const openai = new OpenAI({ baseURL: `${server().url}/v1`, apiKey: 'none', maxRetries: 0 });
      const missing = await openai.completions
        .create({ model: 'gpt-4o', prompt: PROMPT, max_tokens: 4 })
        .catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
      expect((missing as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
      const chatMissing = await openai.chat.completions
        .create({ model: 'tgi', messages: [{ role: 'user', content: PROMPT }], max_tokens: 4 })
        .catch((e: unknown) => e);
      expect((chatMissing as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
      const hf = new InferenceClient(undefined, { endpointUrl: server().url });
      const refused = await hf
        .chatCompletion({ model: 'tgi', messages: [{ role: 'user', content: PROMPT }], max_tokens: 3 })
        .catch((e: unknown) => e);
      expect((refused as { httpResponse?: { status: number } }).httpResponse?.status).toBe(404);
      const ok = await openai.completions.create({
        model: 'speculative',
        prompt: PROMPT,
        max_tokens: 4,
        temperature: 0,
      });
      expect(ok.model).toBe('speculative');
      expect(ok.choices[0]!.text.length).toBeGreaterThan(0);
    }, 120_000);
  });
});
