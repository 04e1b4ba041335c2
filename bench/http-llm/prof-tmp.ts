/** TEMPORARY (profiling only): HTTP level at 64 streams, repeated; main thread profiled by --cpu-prof. */
import os from 'node:os';
import path from 'node:path';
import { Ingress, serve } from '@flotilla/core';
import { LLMEngine, makeRandomModel } from '@flotilla/engine';
import { RANDOM_MODEL_CONFIG } from '@flotilla/deployments';
import { BenchLLM } from './prof-replica-tmp.js';
import { engineLevel, httpLevel } from './load.js';
import { LoadClient } from './load-client.js';
const model = await makeRandomModel(RANDOM_MODEL_CONFIG, { format: 'llama2c', dir: path.join(os.tmpdir(), 'flotilla-bench-http-llm'), seed: 0 });
const engineOptions = { numThreads: 1, device: 'cpu' as const };
const mode = process.argv[2] ?? 'http';
if (mode === 'engine') {
  const engine = await LLMEngine.create({ model, ...engineOptions });
  for (let i = 0; i < 3; i++) { const r = await engineLevel(engine, 64, 64); console.log('engine', r.tokensPerS.toFixed(0)); }
  process.exit(0);
}
const instance = await serve.run(BenchLLM.bind({ model, ...engineOptions, auditLog: 'none' }), { name: 'bench' });
const ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false });
const c = LoadClient.start();
await c.level(ingress.http!.url, 64, 16);
for (let i = 0; i < 4; i++) { const r = await c.level(ingress.http!.url, 64, 64); console.log('http', r.result.tokensPerS.toFixed(0)); }
c.close();
await new Promise((r) => setTimeout(r, 1500));
process.exit(0);
