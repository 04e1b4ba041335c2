/**
 * LoRA through LLMServer's HTTP handler (in process, stories260K-hf, random PEFT adapters): lora_modules at
 * start, /v1/models with `parent`, a request's `model` choosing an adapter (the same text through OpenAI,
 * TGI's adapter_id and gRPC's model), load/unload over HTTP with an admin key (401 without), and the error shapes:
 * an unknown adapter is 404 model_not_found, a misshapen one 400 naming the tensor.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HttpRequestLike } from '@flotilla/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { writeRandomAdapter } from '../../packages/engine/src/model-loader/writers/peft-writer.js';
import { LLMServer } from '../../packages/deployments/src/llm-server.js';
import { STORIES260K_HF_CONFIG, describeWithModels, models } from '../helpers/models.js';

const hfConfig = STORIES260K_HF_CONFIG;

let n = 0;
function req(method: string, p: string, body?: unknown, key?: string): HttpRequestLike {
  return {
    method,
    path: p,
    query: {},
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body,
    requestId: `lora-${n++}`,
    clientIp: '127.0.0.1',
  };
}

async function call(server: LLMServer, r: HttpRequestLike): Promise<{ status: number; body: any }> {
  const head = (await server.handleHttp(r).next()).value as { status: number; body: any };
  return head;
}

describeWithModels('LLMServer with LoRA adapters', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-server-lora-'));
  let server: LLMServer;
  beforeAll(async () => {
    for (const [i, name] of ['a0', 'a1'].entries()) {
      mkdirSync(path.join(dir, name));
      await writeRandomAdapter(path.join(dir, name), hfConfig, { rank: 8, seed: 40 + i, std: 0.1 });
    }
    mkdirSync(path.join(dir, 'wide'));
    await writeRandomAdapter(
      path.join(dir, 'wide'),
      { ...hfConfig, dim: 32 },
      { rank: 4, seed: 1, targetModules: ['v_proj'] },
    );
    server = new LLMServer({
      model: models.stories260KHf,
      servedModelName: 'stories',
      numThreads: 1,
      auditLog: 'none',
      apiKeys: ['user-key'],
      adminKeys: ['admin-key'],
      loraModules: `a0=${path.join(dir, 'a0')}`,
      maxLoras: 2,
      maxLoraRank: 8,
    });
  });
  afterAll(async () => {
    await server?.dispose?.();
    rmSync(dir, { recursive: true, force: true });
  });

  const complete = (model: string) =>
    call(
      server,
      req('POST', '/v1/completions', { model, prompt: 'Once upon a time', max_tokens: 12, temperature: 0 }, 'user-key'),
    );

  it('lists lora_modules with their parent and runs the adapter a request names', async () => {
    const list = await call(server, req('GET', '/v1/models', undefined, 'user-key'));
    expect(list.body.data.map((m: { id: string; parent?: string }) => [m.id, m.parent])).toEqual([
      ['stories', undefined],
      ['a0', 'stories'],
    ]);
    const base = await complete('stories');
    const tuned = await complete('a0');
    expect(tuned.status).toBe(200);
    expect(tuned.body.model).toBe('a0');
    expect(tuned.body.choices[0].text).not.toBe(base.body.choices[0].text);
    const tgi = await call(
      server,
      req(
        'POST',
        '/generate',
        { inputs: 'Once upon a time', parameters: { max_new_tokens: 12, adapter_id: 'a0' } },
        'user-key',
      ),
    );
    expect(tgi.body.generated_text).toBe(tuned.body.choices[0].text);
    const grpc = (await server.grpcGenerate({
      model: 'a0',
      prompt: 'Once upon a time',
      max_tokens: 12,
      temperature: 0,
      api_key: 'user-key',
    })) as { model: string; choices: { text: string }[] };
    expect(grpc.model).toBe('a0');
    expect(grpc.choices[0]!.text).toBe(tuned.body.choices[0].text);
  });

  it('loads and unloads over HTTP with an admin key only; unknown adapters are 404 model_not_found', async () => {
    const body = { lora_name: 'a1', lora_path: path.join(dir, 'a1') };
    expect((await call(server, req('POST', '/v1/load_lora_adapter', body, 'user-key'))).status).toBe(401);
    expect((await call(server, req('POST', '/v1/load_lora_adapter', body, 'admin-key'))).status).toBe(200);
    expect((await complete('a1')).status).toBe(200);
    const model = await call(server, req('GET', '/v1/models/a1', undefined, 'user-key'));
    expect(model.body).toMatchObject({ id: 'a1', parent: 'stories', root: 'a1' }); // the path only for admins
    expect((await call(server, req('POST', '/v1/unload_lora_adapter', { lora_name: 'a1' }, 'admin-key'))).status).toBe(
      200,
    );
    const gone = await complete('a1');
    expect(gone.status).toBe(404);
    expect(gone.body.error).toMatchObject({ code: 'model_not_found', param: 'model' });
    const again = await call(server, req('POST', '/v1/unload_lora_adapter', { lora_name: 'a1' }, 'admin-key'));
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('model_not_found');
    const tgi = await call(
      server,
      req('POST', '/generate', { inputs: 'Hi', parameters: { adapter_id: 'nope' } }, 'user-key'),
    );
    expect(tgi.status).toBe(404);
  });

  it('a misshapen adapter is 400 naming the tensor, and nothing is loaded', async () => {
    const r = await call(
      server,
      req('POST', '/v1/load_lora_adapter', { lora_name: 'wide', lora_path: path.join(dir, 'wide') }, 'admin-key'),
    );
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'invalid_parameter', param: 'lora_path' });
    expect(r.body.error.message).toContain('base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight');
    const list = await call(server, req('GET', '/v1/models', undefined, 'user-key'));
    expect(list.body.data.map((m: { id: string }) => m.id)).toEqual(['stories', 'a0']);
  });
});
