/**
 * MultiModelServer in process (no replicas): its options are checked at construction (LLMServerConfigError),
 * nothing loads before a request (/health 200, /v1/models from the catalogue alone), a model whose file
 * does not load is 503 model_unavailable naming it while the others still serve, and TGI's /info describes
 * the default (first) model.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HttpRequestLike } from '@flotilla/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLMServerConfigError } from '../../packages/deployments/src/errors.js';
import { MultiModelServer } from '../../packages/deployments/src/multi-model-server.js';
import { describeWithModels, models } from '../helpers/models.js';

let n = 0;
function req(method: string, p: string, body?: unknown): HttpRequestLike {
  return { method, path: p, query: {}, headers: {}, body, requestId: `mme-${n++}`, clientIp: '127.0.0.1' };
}
async function head(server: MultiModelServer, r: HttpRequestLike): Promise<{ status: number; body: any }> {
  return (await server.handleHttp(r).next()).value as { status: number; body: any };
}

describeWithModels('MultiModelServer in process', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-multi-model-errors-'));
  const broken = path.join(dir, 'broken.bin');
  let server: MultiModelServer;
  beforeAll(() => {
    writeFileSync(broken, 'not a model');
    server = new MultiModelServer({
      models: { stories: models.stories260K, broken },
      maxModelsPerReplica: 1,
      numThreads: 1,
      auditLog: 'none',
    });
  });
  afterAll(async () => {
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses bad options at construction', () => {
    const bad = [
      {},
      { models: '' },
      { models: 'stories' },
      { models: `a=${models.stories260K},a=${models.stories260K}` },
      { models: 'a=/no/such/model.bin' },
      { models: `a=${models.stories260K}`, model: models.stories260K },
      { models: `a=${models.stories260K}`, loraModules: 'x=/tmp/x' },
      { models: `a=${models.stories260K}`, maxModelsPerReplica: 0 },
    ];
    for (const options of bad)
      expect(() => new MultiModelServer(options), JSON.stringify(options)).toThrow(LLMServerConfigError);
  });

  it('is healthy and lists its catalogue before loading anything', async () => {
    expect((await head(server, req('GET', '/health'))).status).toBe(200);
    const list = await head(server, req('GET', '/v1/models'));
    expect(list.body.data.map((m: { id: string; max_model_len: number | null }) => [m.id, m.max_model_len])).toEqual([
      ['stories', null],
      ['broken', null],
    ]);
    expect((await head(server, req('GET', '/v1/models/broken'))).status).toBe(200);
    expect((await head(server, req('GET', '/v1/models/nope'))).body.error.code).toBe('model_not_found');
  });

  it('answers a model that fails to load with 503 naming it, and serves the others', async () => {
    const failed = await head(server, req('POST', '/v1/completions', { model: 'broken', prompt: 'Hi', max_tokens: 2 }));
    expect(failed.status).toBe(503);
    expect(failed.body.error.message).toContain("'broken' failed to load");
    const ok = await head(server, req('POST', '/v1/completions', { model: 'stories', prompt: 'Hi', max_tokens: 2 }));
    expect(ok.status).toBe(200);
    expect(ok.body.model).toBe('stories');
    const info = await head(server, req('GET', '/info'));
    expect(info.body.model_id).toBe('stories'); // TGI names no model: the default
    const list = await head(server, req('GET', '/v1/models'));
    expect(list.body.data[0].max_model_len).toBe(512); // known once loaded here
  });
});
