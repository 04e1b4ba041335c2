/**
 * vLLM's `vllm:lora_requests_info` on LLMServer's metrics (in process, stories260K-hf, one LoRA slot, two
 * random PEFT adapters): its labels name the adapters with running and waiting requests and the slots
 * (max_lora), its value is the scrape time; absent without LoRA.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HttpRequestLike } from '@flotilla/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLMServer } from '../../packages/deployments/src/llm-server.js';
import { LORA_REQUESTS_INFO } from '../../packages/deployments/src/vllm-lora-metric.js';
import { eventually } from '../helpers/ingress.js';
import { describeWithModels, models } from '../helpers/models.js';
import { writeStoriesAdapters } from '../helpers/lora-adapters.js';

type Family = { name: string; values: Array<{ labels: Record<string, string>; value: number }> };

let n = 0;
function completion(model: string, body: Record<string, unknown>): HttpRequestLike {
  return {
    method: 'POST',
    path: '/v1/completions',
    query: {},
    headers: { 'content-type': 'application/json' },
    body: { model, prompt: 'Once upon a time', temperature: 0, ...body },
    requestId: `lora-metric-${n++}`,
    clientIp: '127.0.0.1',
  };
}

async function loraInfo(server: LLMServer) {
  const families = (await server.collectMetrics()) as Family[];
  return families.find((f) => f.name === LORA_REQUESTS_INFO)?.values;
}

describeWithModels('vllm:lora_requests_info', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-lora-metric-'));
  let server: LLMServer;
  beforeAll(async () => {
    const loraModules = await writeStoriesAdapters(dir, ['a0', 'a1'], 90);
    server = new LLMServer({
      model: models.stories260KHf,
      servedModelName: 'stories',
      numThreads: 1,
      auditLog: 'none',
      loraModules,
      maxLoras: 1,
      maxLoraRank: 8,
    });
    await server.graphInfo(); // loaded
  });
  afterAll(async () => {
    await server?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the adapters running and waiting for the one slot, and max_lora', async () => {
    const before = Date.now() / 1000;
    const idle = await loraInfo(server);
    expect(idle).toHaveLength(1);
    expect(idle![0]!.labels).toEqual({ running_lora_adapters: '', waiting_lora_adapters: '', max_lora: '1' });
    expect(idle![0]!.value).toBeGreaterThanOrEqual(before - 1); // vLLM's set_to_current_time()

    // a0 streams long; a1 then needs the only slot, which a0's request holds until it ends.
    const long = server.handleHttp(completion('a0', { max_tokens: 400, ignore_eos: true, stream: true }));
    expect(((await long.next()).value as { status: number }).status).toBe(200);
    const short = (async () => {
      const chunks = [];
      for await (const c of server.handleHttp(completion('a1', { max_tokens: 4 }))) chunks.push(c);
      return chunks[0] as { status: number };
    })();
    await eventually(
      async () => {
        const v = (await loraInfo(server))?.[0]?.labels;
        return v?.running_lora_adapters === 'a0' && v.waiting_lora_adapters === 'a1';
      },
      10_000,
      'a0 running and a1 waiting',
    );
    for await (const _ of long) {
      /* drain a0 */
    }
    expect((await short).status).toBe(200);
    await eventually(
      async () => (await loraInfo(server))?.[0]?.labels.running_lora_adapters === '',
      10_000,
      'nothing running',
    );
    expect((await loraInfo(server))![0]!.labels.waiting_lora_adapters).toBe('');
  });

  it('is absent without LoRA slots', async () => {
    const plain = new LLMServer({ model: models.stories260K, numThreads: 1, auditLog: 'none' });
    try {
      await plain.graphInfo();
      const families = (await plain.collectMetrics()) as Family[];
      expect(families.some((f) => f.name === 'vllm:num_requests_running')).toBe(true);
      expect(families.some((f) => f.name === LORA_REQUESTS_INFO)).toBe(false);
    } finally {
      await plain.dispose();
    }
  });
});
