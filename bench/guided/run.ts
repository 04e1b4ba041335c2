/**
 * Guided decoding benchmark (noisy on a shared machine; speed targets are ratios from one run):
 *   1. per-token cost of guided against unguided decoding on the ~110M random-weight model at 1 and 32
 *      sequences, in alternating rounds (target: guided at most 10% slower). Guided rounds run a JSON
 *      schema of the shipped set (person.json); every sequence generates up to --tokens tokens (a guided
 *      one may finish earlier: the cost is per generated token). Each round runs both, in turn first
 *      (the load of a shared machine drifts over seconds), and the ratio is the median of the rounds'
 *      ratios, in wall time and in this process's CPU time (native threads included: steadier when
 *      other processes take the cores).
 *   2. schema-valid rate over the shipped schemas (bench/guided/schemas/*.json) on the bundled story
 *      model: --samples samples per schema at temperature 1; every completed output (finish 'stop') must
 *      validate with ajv (target 100%); outputs cut by max_tokens are counted apart.
 * Prints a table and writes bench/results/guided-<time>.json.
 *
 *   npx tsx bench/guided/run.ts [--tokens 32] [--rounds 3] [--samples 8] [--batches 1,32] [--sections cost,validity]
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { LLMEngine, type SamplingParams } from '../../packages/engine/src/index.js';
import { makeRandomModel, MODEL_PRESETS } from '../../packages/engine/src/model-loader/random-model.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const { values: opts } = parseArgs({
  options: {
    tokens: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    samples: { type: 'string', default: '8' },
    batches: { type: 'string', default: '1,32' },
    sections: { type: 'string', default: 'cost,validity' },
  },
});
const TOKENS = Number(opts.tokens);
const ROUNDS = Number(opts.rounds);
const SAMPLES = Number(opts.samples);
const BATCHES = opts.batches.split(',').map(Number);
const SECTIONS = opts.sections.split(',');

const schemaDir = path.join(here, 'schemas');
const schemas = readdirSync(schemaDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ name: f.replace(/\.json$/, ''), schema: JSON.parse(readFileSync(path.join(schemaDir, f), 'utf8')) }));
const person = schemas.find((s) => s.name === 'person')!.schema;

async function randomModel(): Promise<string> {
  const dir = path.join(os.tmpdir(), 'flotilla-bench-models', '110m');
  const file = path.join(dir, '110m.bin');
  if (existsSync(file) && existsSync(path.join(dir, 'tokenizer.bin'))) return file;
  console.log(`writing random-weight 110m model to ${dir} ...`);
  return makeRandomModel(MODEL_PRESETS['110m'], { format: 'llama2c', dir, name: '110m', seed: 1 });
}

/** Runs `batch` requests at once; returns ms per generated token (wall / tokens, and this process's CPU / tokens). */
async function round(
  engine: LLMEngine,
  batch: number,
  guided: boolean,
): Promise<{ msPerToken: number; cpuMsPerToken: number; tokens: number }> {
  const params = (i: number): SamplingParams => ({
    temperature: 1,
    seed: 100 + i,
    maxTokens: TOKENS,
    ignoreEos: !guided,
    ...(guided ? { guided: { kind: 'json_schema', schema: person } } : {}),
  });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const counts = await Promise.all(
    Array.from({ length: batch }, async (_, i) => {
      let n = 0;
      for await (const o of engine.generate(`story ${i}`, params(i))) n = o.usage.completionTokens;
      return n;
    }),
  );
  const tokens = counts.reduce((a, b) => a + b, 0);
  const cpu = process.cpuUsage(cpu0);
  return {
    msPerToken: (performance.now() - t0) / tokens,
    cpuMsPerToken: (cpu.user + cpu.system) / 1000 / tokens,
    tokens,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const cost: Array<{
  batch: number;
  unguidedMsPerToken: number;
  guidedMsPerToken: number;
  ratio: number;
  cpuRatio: number;
  unguidedTokens: number;
  guidedTokens: number;
}> = [];
if (SECTIONS.includes('cost')) {
  const engine = await LLMEngine.create({ model: await randomModel(), maxNumSeqs: Math.max(...BATCHES) });
  await round(engine, 1, true); // warm: compile the schema, first steps
  for (const batch of BATCHES) {
    const u: Awaited<ReturnType<typeof round>>[] = [];
    const g: Awaited<ReturnType<typeof round>>[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2 === 0) {
        u.push(await round(engine, batch, false));
        g.push(await round(engine, batch, true));
      } else {
        g.push(await round(engine, batch, true));
        u.push(await round(engine, batch, false));
      }
    }
    const row = {
      batch,
      unguidedMsPerToken: median(u.map((x) => x.msPerToken)),
      guidedMsPerToken: median(g.map((x) => x.msPerToken)),
      ratio: median(g.map((x, r) => x.msPerToken / u[r]!.msPerToken)),
      cpuRatio: median(g.map((x, r) => x.cpuMsPerToken / u[r]!.cpuMsPerToken)),
      unguidedTokens: u.reduce((a, x) => a + x.tokens, 0),
      guidedTokens: g.reduce((a, x) => a + x.tokens, 0),
    };
    cost.push(row);
    console.log(
      `batch ${batch}: unguided ${row.unguidedMsPerToken.toFixed(2)} ms/token, guided ${row.guidedMsPerToken.toFixed(2)} ms/token, ` +
        `guided/unguided ${row.ratio.toFixed(3)} wall, ${row.cpuRatio.toFixed(3)} CPU (medians of ${ROUNDS} paired rounds; tokens ${row.unguidedTokens} / ${row.guidedTokens})`,
    );
  }
  await engine.dispose();
}

const validity: Array<{ schema: string; samples: number; completed: number; valid: number; cut: number }> = [];
if (SECTIONS.includes('validity')) {
  const engine = await LLMEngine.create({ model: path.join(root, 'models/flotilla-stories/target') });
  const ajv = new Ajv();
  for (const { name, schema } of schemas) {
    const validate = ajv.compile(schema);
    const row = { schema: name, samples: SAMPLES, completed: 0, valid: 0, cut: 0 };
    const last: Array<{ text: string; reason: string | null }> = [];
    for await (const o of engine.generate('Once upon a time', {
      temperature: 1,
      n: SAMPLES,
      seed: 7,
      maxTokens: 300,
      guided: { kind: 'json_schema', schema },
    }))
      last[o.index] = { text: o.cumulativeText, reason: o.finishReason };
    for (const o of last) {
      if (o.reason !== 'stop') {
        row.cut++;
        continue;
      }
      row.completed++;
      try {
        if (validate(JSON.parse(o.text))) row.valid++;
      } catch {
        /* not JSON: invalid */
      }
    }
    validity.push(row);
    console.log(`${name}: ${row.valid}/${row.completed} completed outputs valid (${row.cut} cut by max_tokens)`);
  }
  await engine.dispose();
}

const out = path.join(root, 'bench/results');
mkdirSync(out, { recursive: true });
const file = path.join(out, `guided-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(
  file,
  JSON.stringify({ tokens: TOKENS, rounds: ROUNDS, cost, validity, cpus: os.cpus().length }, null, 2),
);
console.table(cost);
console.table(validity);
console.log(`wrote ${file}`);
