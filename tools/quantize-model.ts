/**
 * Writes a GPTQ or AWQ checkpoint of a Hugging Face model (round to nearest in the real layouts; see
 * packages/engine/src/model-loader/writers/gptq-quantize.ts), loadable with quantization=gptq|awq.
 *
 *   npx tsx tools/quantize-model.ts --in models/flotilla-stories/target --out /tmp/target-gptq \
 *     [--method gptq|awq] [--bits 4|8] [--group-size 128|64|32|-1] [--asym] [--desc-act] [--v2]
 */
import { parseArgs } from 'node:util';
import { quantizeCheckpoint } from '../packages/engine/src/model-loader/quantize-checkpoint.js';

const { values } = parseArgs({
  options: {
    in: { type: 'string' },
    out: { type: 'string' },
    method: { type: 'string', default: 'gptq' },
    bits: { type: 'string', default: '4' },
    'group-size': { type: 'string', default: '128' },
    asym: { type: 'boolean', default: false },
    'desc-act': { type: 'boolean', default: false },
    v2: { type: 'boolean', default: false },
  },
});
if (!values.in || !values.out)
  throw new Error('usage: --in HF_DIR --out DIR [--method gptq|awq] [--bits 4|8] [--group-size N]');
if (values.method !== 'gptq' && values.method !== 'awq') throw new Error(`--method gptq or awq, not ${values.method}`);
const bits = Number(values.bits);
if (bits !== 4 && bits !== 8) throw new Error(`--bits 4 or 8, not ${values.bits}`);
const out = await quantizeCheckpoint(values.in, values.out, {
  method: values.method,
  bits,
  groupSize: Number(values['group-size']),
  sym: !values.asym,
  descAct: values['desc-act'],
  ...(values.v2 ? { checkpointFormat: 'gptq_v2' as const } : {}),
});
console.log(`wrote ${out}`);
