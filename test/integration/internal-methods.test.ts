/**
 * `static internalMethods`: methods the app's deployments call through handles (a graph's token stream
 * behind LLMFront, PD's KV handoff) are refused to the proxies' clients — HTTP and gRPC Serve.Call/Stream
 * answer them as unknown methods, on the ingress and on a deployment named in the call — while handle
 * calls between deployments still reach them. Real runtime, thread replicas, both proxies.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRAPH_METHODS } from '../../packages/deployments/src/graph.js';
import {
  HybridRouter,
  LLMServer,
  MultiLoraServer,
  MultiModelServer,
  ResponseCache,
  SpeculativePipeline,
} from '../../packages/deployments/src/index.js';
import { DecodeServer } from '../../packages/deployments/src/pd/decode-server.js';
import { PdRouter } from '../../packages/deployments/src/pd/pd-router.js';
import { PrefillServer } from '../../packages/deployments/src/pd/prefill-server.js';
import { app } from '../fixtures/apps/internal-methods.js';
import { serveForTest, type Served, serveClient } from '../helpers/ingress.js';

let served: Served;
let client: any;

beforeAll(async () => {
  served = await serveForTest([{ name: 'vault', routePrefix: '/', app }]);
  client = serveClient(served.grpcAddress);
}, 60_000);
afterAll(async () => {
  client?.close();
  await served?.close();
});

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const unary = (req: object) =>
  new Promise<any>((resolve, reject) =>
    client.Call(req, (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res))),
  );
const post = (path: string) =>
  fetch(`${served.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' });

describe('internal methods', () => {
  it('HTTP: the ingress answers its public methods, 404 for an internal one, and does not list it', async () => {
    const ok = await post('/hello');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toBe('hello');
    const refused = await post('/secret');
    expect(refused.status).toBe(404);
    const body = (await refused.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('NOT_FOUND');
    expect(body.error.message).not.toContain('secret,'); // the list of methods leaves it out
    const routes = (await (await fetch(`${served.url}/-/routes`)).json()) as unknown;
    expect(JSON.stringify(routes)).not.toMatch(/"secret"/);
  });

  it('gRPC Serve.Call: NOT_FOUND for internal methods of the ingress and of a named deployment', async () => {
    expect(JSON.parse((await unary({ application: 'vault', method: 'hello', payload: json([]) })).payload)).toBe(
      'hello',
    );
    for (const req of [
      { application: 'vault', method: 'secret' },
      { application: 'vault', deployment: 'Vault', method: 'peek' },
    ]) {
      const err = (await unary({ ...req, payload: json([]) }).catch((e: unknown) => e)) as grpc.ServiceError;
      expect(err.code).toBe(grpc.status.NOT_FOUND);
    }
    // The named deployment's public methods stay callable.
    const open = await unary({ application: 'vault', deployment: 'Vault', method: 'open', payload: json([]) });
    expect(JSON.parse(open.payload)).toBe('open');
  });

  it('handle calls between the deployments still reach internal methods', async () => {
    const res = await post('/inside');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(['the vault', 'open']);
  });

  it('every graph class keeps its graph methods internal; PD servers their KV handoff too', () => {
    const graph = Object.values(GRAPH_METHODS);
    for (const cls of [LLMServer, SpeculativePipeline, HybridRouter, ResponseCache, PdRouter])
      expect(cls.internalMethods).toEqual(expect.arrayContaining(graph));
    expect(PrefillServer.internalMethods).toEqual(expect.arrayContaining([...graph, 'prefill', 'prefillStream']));
    expect(DecodeServer.internalMethods).toEqual(expect.arrayContaining([...graph, 'decode', 'generateLocal']));
    // The optional graph methods LLMFront calls for /v1/embeddings, Embed, /tokenize and /detokenize, on
    // the classes that implement them (MultiModelServer and MultiLoraServer inherit LLMServer's list).
    const optional = ['tokenizeEmbeddingInputs', 'embedTokens', 'tokenizeText', 'detokenizeTokens'];
    expect(graph).toEqual(expect.arrayContaining(optional));
    for (const cls of [LLMServer, MultiModelServer, MultiLoraServer]) {
      expect(cls.internalMethods).toEqual(expect.arrayContaining(optional));
      for (const m of optional)
        expect(typeof (cls.prototype as unknown as Record<string, unknown>)[m]).toBe('function');
    }
  });
});
