/**
 * KV transfer for prefill/decode disaggregation, on a random-weight 110M Llama (dim 768, 12 layers,
 * 12 KV heads; written once to the temp directory):
 *  - KV bytes per prompt token, and the payload of real prompts (LLMEngine.prefill);
 *  - the native copy: NativeModel.exportKv / importKv GB/s (pool ↔ payload, parallel over blocks);
 *  - moving a payload-sized byte array per transport, GB/s = bytes / time of a call that carries it to
 *    the replica (its answer is a few bytes): thread replica with transfer() (moved) and without
 *    (structured clone), process replica (IPC, 'advanced' serialization; with transfer() through a
 *    /dev/shm file), and a real gRPC ActorChannel
 *    stream on localhost (v8 frames cut into 1 MiB chunks; both ends in this process), beside a plain
 *    memcpy (Uint8Array.set) for scale. Median of --reps calls per size.
 * Prints a table and writes bench/results/kv-transfer-<time>.json. On a shared machine compare within a run.
 *
 *   npx tsx bench/kv-transfer/run.ts [--prompts 256,1000] [--reps 5] [--threads 2]
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServe, transfer } from '../../packages/core/src/index.js';
import { readKvHeader } from '../../packages/engine/src/kv-transfer/kv-payload.js';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { loadModel } from '../../packages/engine/src/model-loader/load-model.js';
import { MODEL_PRESETS, makeRandomModel } from '../../packages/engine/src/model-loader/random-model.js';
import { app, pattern } from '../../test/fixtures/apps/kv-transfer.js';
import { grpcChannelPair } from '../../test/helpers/grpc-actor-stream.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: {
    prompts: { type: 'string', default: '256,1000' },
    reps: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' },
  },
});
const promptLens = args.prompts.split(',').map(Number);
const reps = Number(args.reps);
const numThreads = Number(args.threads);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const gbs = (bytes: number, ms: number) => bytes / ms / 1e6;

async function modelFile(): Promise<string> {
  const dir = path.join(os.tmpdir(), 'flotilla-bench-models', '110m');
  const file = path.join(dir, '110m.bin');
  if (existsSync(file) && existsSync(path.join(dir, 'tokenizer.bin'))) return file;
  console.log(`writing random-weight 110m model to ${dir} ...`);
  return makeRandomModel(MODEL_PRESETS['110m'], { format: 'llama2c', dir, name: '110m', seed: 1 });
}

/** Median ms of `reps` runs of `fn` (a fresh input made by `make` before each, outside the timing). */
async function time<T>(make: () => T, fn: (input: T) => Promise<unknown> | unknown): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < reps + 1; i++) {
    const input = make();
    const t0 = performance.now();
    await fn(input);
    if (i > 0) ms.push(performance.now() - t0); // the first warms up
  }
  return median(ms);
}

async function main() {
  const file = await modelFile();
  const opts = { numThreads, device: 'cpu' as const, kvCacheBytes: 512 << 20, maxBatchTokens: 1024 };
  const loaded = await loadModel(file, opts);
  const engine = await LLMEngine.create({ model: loaded, maxNumBatchedTokens: 1024, guidedDecoding: false });
  const model = loaded.model;
  const c = model.config;
  const bytesPerToken = model.kvBlockBytes! / model.blockSize;
  console.log(
    `110m random: dim ${c.dim}, ${c.nLayers} layers, ${c.nKvHeads} KV heads, ${model.kvDtype} KV, block ${model.blockSize}: ${bytesPerToken} KV bytes per prompt token`,
  );

  // Real payloads: prompts of random in-vocabulary ids, prefilled and exported by the engine.
  const payloads: Array<{ promptTokens: number; bytes: number; prefillMs: number }> = [];
  const native: Array<{ promptTokens: number; bytes: number; exportGBs: number; importGBs: number }> = [];
  for (const n of promptLens) {
    const ids = Array.from({ length: n }, (_, i) => 3 + ((i * 7919) % (c.vocabSize - 3)));
    const t0 = performance.now();
    const h = await engine.prefill({ tokenIds: ids }, { temperature: 0, maxTokens: 2 });
    const prefillMs = performance.now() - t0;
    const header = readKvHeader(h.kv!);
    payloads.push({ promptTokens: n, bytes: h.kv!.byteLength, prefillMs });
    const blocks = Int32Array.from({ length: header.numBlocks }, (_, i) => i);
    const out = new Uint8Array(h.kv!.byteLength);
    const exportMs = await time(
      () => out,
      (o) => model.exportKv!(blocks, n, o),
    );
    const importMs = await time(
      () => h.kv!,
      (kv) => model.importKv!(kv, blocks),
    );
    native.push({
      promptTokens: n,
      bytes: h.kv!.byteLength,
      exportGBs: gbs(out.byteLength, exportMs),
      importGBs: gbs(out.byteLength, importMs),
    });
  }
  await engine.dispose();
  loaded.dispose();

  const instance = await startServe({ applications: [{ name: 'kv', app: app() }], checkpoint: false });
  const pair = await grpcChannelPair();
  const rows: Array<Record<string, number | string>> = [];
  try {
    const thread = instance.getHandle('kv', 'BytesThread');
    const proc = instance.getHandle('kv', 'BytesProcess');
    let onServer: (() => void) | null = null;
    pair.server.onMessage(() => onServer?.());
    for (const { promptTokens, bytes } of payloads) {
      const make = () => pattern(bytes, promptTokens);
      const buf = make();
      const scratch = new Uint8Array(bytes);
      const memcpy = await time(
        () => buf,
        (b) => scratch.set(b),
      );
      const moved = await time(make, (b) => thread.size(transfer(b)));
      const cloned = await time(make, (b) => thread.size(b));
      const ipc = await time(make, (b) => proc.size(b));
      const shm = await time(make, (b) => proc.size(transfer(b)));
      const grpc = await time(make, async (b) => {
        const arrived = new Promise<void>((r) => {
          onServer = r;
        });
        pair.client.send({ type: 'result', id: 1, value: b });
        await arrived;
      });
      rows.push({
        promptTokens,
        payloadMB: +(bytes / 1e6).toFixed(1),
        memcpyGBs: +gbs(bytes, memcpy).toFixed(2),
        threadMovedGBs: +gbs(bytes, moved).toFixed(2),
        threadClonedGBs: +gbs(bytes, cloned).toFixed(2),
        processIpcGBs: +gbs(bytes, ipc).toFixed(2),
        processShmGBs: +gbs(bytes, shm).toFixed(2),
        grpcChunkedGBs: +gbs(bytes, grpc).toFixed(2),
        threadMovedMs: +moved.toFixed(2),
        processIpcMs: +ipc.toFixed(2),
        grpcMs: +grpc.toFixed(2),
      });
    }
  } finally {
    await pair.close();
    await instance.shutdown();
  }

  console.log('\nprefill + export on the engine (one request):');
  console.table(
    payloads.map((p) => ({
      ...p,
      prefillMs: +p.prefillMs.toFixed(0),
      bytesPerToken: Math.round(p.bytes / p.promptTokens),
    })),
  );
  console.log('native copy (pool <-> payload):');
  console.table(native.map((n) => ({ ...n, exportGBs: +n.exportGBs.toFixed(2), importGBs: +n.importGBs.toFixed(2) })));
  console.log(`transports (median of ${reps} calls carrying the payload to the replica):`);
  console.table(rows);
  const dir = path.join(root, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const out = path.join(dir, `kv-transfer-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    out,
    JSON.stringify(
      {
        model: '110m random (llama2c f32)',
        threads: numThreads,
        cpus: os.cpus().length,
        bytesPerToken,
        payloads,
        native,
        transports: rows,
      },
      null,
      2,
    ),
  );
  console.log(`wrote ${path.relative(root, out)}`);
}

await main();
