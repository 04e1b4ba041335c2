/**
 * Where prefix-aware routing gets its keys: the deployment class's static routingKey(method, args)
 * (core's routing-key.ts reads it when the spec is built), and LLMServer's, which keys OpenAI, TGI and
 * gRPC generation requests by their prompt's first characters (packages/deployments/src/llm-routing-key.ts).
 */
import { describe, expect, it } from 'vitest';
import { buildGraph, deployment, DeploymentConfigError, type HttpRequestLike } from '@flotilla/core';
import { LLMServer, llmRoutingKey, ROUTING_KEY_CHARS } from '@flotilla/deployments';
import { buildSpecs } from '../../packages/core/src/controller/application-state.js';
import { routingKeyOf } from '../../packages/core/src/router/routing-key.js';
import { RouterSet } from '../../packages/core/src/router/router-set.js';
import type { RoutedReplica, RouterSettings } from '../../packages/core/src/router/router.js';
import { RuntimeEvents } from '../../packages/core/src/runtime-events.js';

@deployment({ routing: 'prefix-aware' })
class Keyed {
  static width = 3;
  static routingKey(method: string, args: readonly unknown[]): string | undefined {
    // biome-ignore lint/complexity/noThisInStatic: checks that core calls it on the class
    return method === 'ask' ? String(args[0]).slice(0, this.width) : undefined;
  }

  ask(text: string): string {
    return text;
  }
}

@deployment({ routing: 'prefix-aware' })
class Unkeyed {}

@deployment({})
class Plain {}

@deployment({ routing: 'prefix-aware' })
class ShortKeyLLM extends LLMServer {
  static override routingKeyChars = 16;
}

const http = (path: string, body: unknown, method = 'POST'): HttpRequestLike => ({
  method,
  path,
  query: {},
  headers: { 'content-type': 'application/json' },
  body,
  requestId: 'r',
  clientIp: '127.0.0.1',
});

describe("a deployment's routing key", () => {
  it("is the class's static routingKey, called on the class, in the deployment spec", () => {
    const [spec] = buildSpecs('app', buildGraph('app', Keyed.bind()), undefined);
    expect(spec!.routingKey!('ask', ['abcdef'])).toBe('abc');
    expect(spec!.routingKey!('other', ['abcdef'])).toBeUndefined();
    // A non-string key is no key.
    expect(routingKeyOf({ routingKey: () => 42 }, 'prefix-aware', 'X')!('m', [])).toBeUndefined();
  });

  it("is absent for a class without one, and fails a 'prefix-aware' deployment that has none", () => {
    const [plain] = buildSpecs('app', buildGraph('app', Plain.bind()), undefined);
    expect(plain!.routingKey).toBeUndefined();
    expect(() => buildSpecs('app', buildGraph('app', Unkeyed.bind()), undefined)).toThrow(DeploymentConfigError);
    expect(() => buildSpecs('app', buildGraph('app', Unkeyed.bind()), undefined)).toThrow(
      /routing 'prefix-aware' needs the class to declare static routingKey/,
    );
    expect(() => routingKeyOf({ routingKey: 'prompt' }, 'pow2', 'X')).toThrow(/static routingKey must be a function/);
  });
});

describe("the callers' routers (RouterSet)", () => {
  /** Replicas that answer at once with their own id. */
  const replicas: RoutedReplica[] = ['r1', 'r2', 'r3', 'r4'].map((id) => ({
    id,
    maxOngoing: 8,
    actor: {
      call: async () => id,
      stream: () => {
        throw new Error('unused');
      },
    },
  }));

  it("key calls of the ingress and of relayed replica handles alike, and take a new spec's settings on publish", async () => {
    let settings: RouterSettings = {
      maxQueuedRequests: -1,
      routing: 'prefix-aware',
      routingKey: (_method, args) => String(args[0]).slice(0, 5),
    };
    const set = new RouterSet(new RuntimeEvents(), () => settings);
    set.publish('app', 'LLM', replicas);
    const landed = async (caller: string, text: string) =>
      (await set.get(caller, 'app', 'LLM').call('m', [text], { requestId: text })) as string;
    const ids = new Set<string>();
    for (let i = 0; i < 10; i++) ids.add(await landed(i % 2 ? 'ingress' : 'Caller', `hello ${i}`));
    expect(ids.size).toBe(1);
    // A rolled-out spec (here: pow2) reaches routers made before it with the next publish.
    settings = { maxQueuedRequests: -1, routing: 'pow2' };
    set.publish('app', 'LLM', replicas);
    ids.clear();
    for (let i = 0; i < 30; i++) ids.add(await landed('ingress', `hello ${i}`));
    expect(ids.size).toBeGreaterThan(1);
  });
});

describe("LLMServer's routing key (the prompt's first characters)", () => {
  const system = 'Once upon a time there was a little robot who loved to read stories. '.repeat(6);
  const key = system.slice(0, ROUTING_KEY_CHARS);

  it('keys OpenAI completions, TGI and gRPC requests by the same prompt text, whatever follows it', () => {
    expect(system.length).toBeGreaterThan(ROUTING_KEY_CHARS);
    const keys = [
      LLMServer.routingKey('handleHttp', [http('/v1/completions', { prompt: `${system} The end.`, max_tokens: 4 })]),
      LLMServer.routingKey('handleHttp', [http('/v1/completions/', { prompt: [`${system} Then?`] })]),
      LLMServer.routingKey('handleHttp', [http('/generate', { inputs: `${system} Why?`, parameters: {} })]),
      LLMServer.routingKey('handleHttp', [http('/generate_stream', { inputs: `${system} How?` })]),
      LLMServer.routingKey('handleHttp', [http('/', { inputs: `${system} Who?` })]),
      LLMServer.routingKey('grpcGenerate', [{ prompt: `${system} When?`, messages: [], prompt_token_ids: [] }, {}]),
      LLMServer.routingKey('grpcGenerateStream', [{ prompt: `${system} Where?` }]),
    ];
    expect(keys).toEqual(Array(keys.length).fill(key));
    expect(LLMServer.routingKey('handleHttp', [http('/v1/completions', { prompt: 'Hi' })])).toBe('Hi');
  });

  it('keys chat by its messages in order, so later turns of a conversation share the first turns key', () => {
    const first = [
      { role: 'system', content: system },
      { role: 'user', content: 'Tell me a story' },
    ];
    const chat = (messages: unknown) =>
      LLMServer.routingKey('handleHttp', [http('/v1/chat/completions', { messages })]);
    const k = chat(first)!;
    expect(k).toHaveLength(ROUTING_KEY_CHARS);
    expect(k.startsWith('system\nOnce upon a time')).toBe(true);
    expect(chat([...first, { role: 'assistant', content: 'Lily saw a dog.' }, { role: 'user', content: 'More' }])).toBe(
      k,
    );
    expect(chat([{ role: 'system', content: [{ type: 'text', text: system }] }])).toBe(k);
    expect(chat([{ role: 'user', content: 'Hi' }])).toBe('user\nHi\n');
    expect(LLMServer.routingKey('grpcGenerate', [{ prompt: '', messages: first, prompt_token_ids: [] }])).toBe(k);
  });

  it('keys token-id prompts by their first ids', () => {
    const ids = Array.from({ length: 200 }, (_, i) => i + 1);
    const k = LLMServer.routingKey('handleHttp', [http('/v1/completions', { prompt: ids })])!;
    expect(k.startsWith('ids:1,2,3,')).toBe(true);
    expect(k).toHaveLength(ROUTING_KEY_CHARS);
    expect(LLMServer.routingKey('handleHttp', [http('/v1/completions', { prompt: [ids] })])).toBe(k);
    expect(LLMServer.routingKey('grpcGenerate', [{ prompt: '', messages: [], prompt_token_ids: ids }])).toBe(k);
  });

  it('gives no key (power of two choices) to other routes, methods and malformed bodies, without throwing', () => {
    const none = [
      ['handleHttp', [http('/v1/models', undefined, 'GET')]],
      ['handleHttp', [http('/health', undefined, 'GET')]],
      ['handleHttp', [http('/tokenize', { prompt: system })]],
      ['handleHttp', [http('/v1/completions', '{"prompt": ')]],
      ['handleHttp', [http('/v1/completions', { prompt: 42 })]],
      ['handleHttp', [http('/v1/completions', { prompt: [] })]],
      ['handleHttp', [http('/v1/completions', { prompt: ['x', 1].reverse() })]],
      ['handleHttp', [http('/v1/chat/completions', { messages: 'hi' })]],
      ['handleHttp', [http('/v1/chat/completions', { messages: [null] })]],
      ['handleHttp', [http('/generate', { inputs: '' })]],
      ['handleHttp', [null]],
      ['handleHttp', []],
      ['grpcGenerate', [{ prompt: '', messages: [], prompt_token_ids: [] }]],
      ['engineStats', []],
      ['modelInfo', [{ prompt: system }]],
    ] as const;
    for (const [method, args] of none) expect(LLMServer.routingKey(method, args), JSON.stringify(args)).toBeUndefined();
  });

  it("follows a subclass's routingKeyChars", () => {
    const req = [http('/v1/completions', { prompt: system })];
    expect(ShortKeyLLM.routingKey('handleHttp', req)).toBe(system.slice(0, 16));
    expect(llmRoutingKey('handleHttp', req, 8)).toBe(system.slice(0, 8));
    const [spec] = buildSpecs('app', buildGraph('app', ShortKeyLLM.bind({})), undefined);
    expect(spec!.routingKey!('handleHttp', req)).toBe(system.slice(0, 16));
  });
});
