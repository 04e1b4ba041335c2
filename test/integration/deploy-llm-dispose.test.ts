/**
 * LLMServer.dispose(): on the runtime, a replica stopped by scale-down or shutdown disposes its engine
 * (thread replicas, startServe, stories260K); in this process, dispose() ends the requests still running,
 * happens once, and later requests get 503.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { startServe, type HttpRequestLike } from '@flotilla/core';
import type { LLMEngine } from '@flotilla/engine';
import { LLMServer } from '../../packages/deployments/src/index.js';
import { RecordedLLM } from '../fixtures/apps/disposable.js';
import { eventually } from '../helpers/ingress.js';
import { describeWithModels, models } from '../helpers/models.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'flotilla-llm-dispose-'));
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describeWithModels('LLMServer.dispose on the runtime (thread replicas, stories260K)', () => {
  it('frees the engine of the replica stopped by scale-down, then of the others at shutdown', async () => {
    const file = path.join(tmp, 'llm.txt');
    const options = { model: models.stories260K, numThreads: 1, auditLog: 'none' as const };
    const instance = await startServe({ applications: [{ name: 'llm', app: RecordedLLM.bind(options, file) }] });
    try {
      const handle = instance.getHandle('llm') as unknown as { engineStats(): Promise<unknown> };
      await eventually(async () => (await handle.engineStats()) !== null, 60_000, 'model loaded');
      const ids = instance.status().applications[0]!.deployments[0]!.replicas.map((r) => r.id);
      expect(ids).toHaveLength(2);
      await instance.apply([{ name: 'llm', app: RecordedLLM.bind(options, file).options({ numReplicas: 1 }) }], {
        timeoutS: 60,
      });
      await eventually(() => lines(file).length === 1, 15_000, 'the scaled-down replica disposed');
      const [stopped] = lines(file);
      expect(stopped).toMatch(/^llm \S+ E_ENGINE_DISPOSED$/);
      expect(ids).toContain(stopped!.split(' ')[1]);
      await instance.shutdown();
      expect(
        lines(file)
          .map((l) => l.split(' ')[1])
          .sort(),
      ).toEqual([...ids].sort());
      expect(lines(file).every((l) => l.endsWith(' E_ENGINE_DISPOSED'))).toBe(true);
    } finally {
      await instance.shutdown();
    }
  }, 120_000);
});

describeWithModels('LLMServer.dispose (in process)', () => {
  class Probe extends LLMServer {
    get engineForTest(): LLMEngine | undefined {
      return this.engine;
    }
  }
  let n = 0;
  const post = (p: string, body: unknown): HttpRequestLike => ({
    method: 'POST',
    path: p,
    query: {},
    headers: { 'content-type': 'application/json' },
    body,
    requestId: `dispose-${n++}`,
    clientIp: '127.0.0.1',
  });

  it('ends the requests still running, happens once, and later requests get 503', async () => {
    const server = new Probe({ model: models.stories260K, numThreads: 1, auditLog: 'none' });
    const stream = server.handleHttp(
      post('/v1/completions', { prompt: 'Once upon a time', max_tokens: 400, ignore_eos: true, stream: true }),
    );
    expect((await stream.next()).value).toMatchObject({ status: 200 });
    expect((await stream.next()).value).toMatch(/^data: \{/);
    const disposing = server.dispose();
    expect(server.dispose()).toBe(disposing);
    let rest = '';
    for await (const chunk of stream) rest += chunk as string;
    await disposing;
    // Cut short: an in-band error event, no [DONE].
    expect(rest).toContain('"error"');
    expect(rest).not.toContain('[DONE]');
    expect(() => server.engineForTest!.generate('x')).toThrow(expect.objectContaining({ code: 'E_ENGINE_DISPOSED' }));
    const later = (await server.handleHttp(post('/v1/completions', { prompt: 'x' })).next()).value;
    expect(later).toMatchObject({ status: 503, body: { error: { code: 'model_unavailable' } } });
  });

  it('frees a model that is still loading once it has loaded', async () => {
    const server = new Probe({ model: models.stories260K, numThreads: 1, auditLog: 'none' });
    await server.dispose();
    expect(() => server.engineForTest!.generate('x')).toThrow(expect.objectContaining({ code: 'E_ENGINE_DISPOSED' }));
  });
});
