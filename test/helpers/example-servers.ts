/**
 * The examples as the README runs them, for the tests that ask them through real clients
 * (examples-cli.test.ts, example-graph-clients.test.ts): `serve run examples/FILE:app` as a child
 * process (gRPC on) started before a describe block's tests and stopped after them, and the speculative
 * example's target model alone — the reference its greedy text must equal.
 */
import { afterAll, beforeAll } from 'vitest';
import { LLMEngine, type PromptInput } from '@flotilla/engine';
import { defaultPair } from '../../examples/speculative.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';

/** Registers the hooks of one describe block; the returned function gives the running server (after beforeAll). */
export function serveExample(file: string): () => ServeRun {
  let server: ServeRun | undefined;
  beforeAll(async () => {
    server = await serveRun([`examples/${file}:app`], 180_000);
  }, 200_000);
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error(`examples/${file} is not running (called outside its describe block's tests)`);
    return server;
  };
}

/** An engine over examples/speculative.ts's target model (one thread); the caller disposes it. */
export function speculativeTarget(): Promise<LLMEngine> {
  const pair = defaultPair();
  return LLMEngine.create({
    model: pair.target,
    numThreads: 1,
    ...(pair.tokenizer ? { tokenizerPath: pair.tokenizer } : {}),
  });
}

/** The engine's greedy text for `prompt`, up to maxTokens. */
export async function greedyText(engine: LLMEngine, prompt: PromptInput, maxTokens: number): Promise<string> {
  let text = '';
  for await (const out of engine.generate(prompt, { temperature: 0, maxTokens })) text += out.text;
  return text;
}
