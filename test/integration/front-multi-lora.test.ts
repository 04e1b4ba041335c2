/**
 * A MultiLoraServer as a graph behind the front's serving code (FrontServer over it in process, the
 * same code LLMFront runs): its adapters are listed on the front's /v1/models, and a request naming one
 * reaches the graph as GraphRequest.model, which loads the adapter and runs on it: the same greedy text as
 * the adapter on the server's own endpoint; an unknown name is 404 model_not_found.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HttpRequestLike } from '@flotilla/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FrontServer } from '../../packages/deployments/src/front-server.js';
import { localClient } from '../../packages/deployments/src/graph-client.js';
import { MultiLoraServer } from '../../packages/deployments/src/lora-multiplex.js';
import { RequestGate } from '../../packages/deployments/src/request-gate.js';
import { describeWithModels, models } from '../helpers/models.js';
import { writeStoriesAdapters } from '../helpers/lora-adapters.js';

let n = 0;
function req(method: string, p: string, body?: unknown): HttpRequestLike {
  return { method, path: p, query: {}, headers: {}, body, requestId: `fml-${n++}`, clientIp: '127.0.0.1' };
}
async function head(chunks: AsyncGenerator<unknown>): Promise<{ status: number; body: any }> {
  return (await chunks.next()).value as { status: number; body: any };
}

describeWithModels('MultiLoraServer behind the front', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-front-lora-'));
  let server: MultiLoraServer;
  let front: FrontServer;
  beforeAll(async () => {
    const loraModules = await writeStoriesAdapters(dir, ['a0', 'a1'], 60);
    server = new MultiLoraServer({
      model: models.stories260KHf,
      servedModelName: 'stories',
      numThreads: 1,
      auditLog: 'none',
      loraModules,
      maxLoras: 1,
      maxLoraRank: 8,
    });
    front = new FrontServer({ tuned: localClient(server) }, new RequestGate({ auditLog: 'none' }));
  });
  afterAll(async () => {
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  const body = (model: string) => ({ model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 });

  it('lists the adapters and runs the one a request names, as the server itself does', async () => {
    const list = await head(front.http(req('GET', '/v1/models')));
    expect(list.body.data.map((m: { id: string }) => m.id)).toEqual(['tuned', 'a0', 'a1']);
    const texts = new Map<string, string>();
    for (const name of ['a0', 'a1', 'a0']) {
      const viaFront = await head(front.http(req('POST', '/v1/completions', body(name))));
      expect(viaFront.status).toBe(200);
      expect(viaFront.body.model).toBe(name);
      const direct = await head(server.handleHttp(req('POST', '/v1/completions', body(name))));
      expect(viaFront.body.choices[0].text).toBe(direct.body.choices[0].text);
      texts.set(name, viaFront.body.choices[0].text);
    }
    const base = await head(front.http(req('POST', '/v1/completions', body('tuned'))));
    expect(new Set([...texts.values(), base.body.choices[0].text]).size).toBe(3); // adapters and base differ
    const unknown = await head(front.http(req('POST', '/v1/completions', body('a9'))));
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('model_not_found');
  });
});
