// The key=value arguments of examples/llm-server.ts (what `serve run` passes) become LLMServerOptions.
import { describe, expect, it } from 'vitest';
import { LLMServerConfigError } from '../../packages/deployments/src/errors.js';
import { LLMServer } from '../../packages/deployments/src/llm-server.js';
import { KvCacheDtypeError } from '../../packages/engine/src/kv-cache-dtype.js';
import { llmOptions } from '../../examples/llm-server.js';

describe('examples/llm-server.ts arguments', () => {
  it('maps each argument to its option', () => {
    expect(
      llmOptions({ model: 'm.bin', quantize: 'int4', kv_cache_mb: '64', kv_cache_dtype: 'f16', max_num_seqs: '8' }),
    ).toEqual({
      model: 'm.bin',
      quantize: 'int4',
      kvCacheBytes: 64 * 2 ** 20,
      kvCacheDtype: 'f16',
      maxNumSeqs: 8,
    });
  });

  it('rejects unknown arguments and bad values, naming them', () => {
    expect(() => llmOptions({ kv_cache_dtype: 'bf16' })).toThrow(KvCacheDtypeError);
    expect(() => llmOptions({ kv_cache_dtype: 'bf16' })).toThrow(
      /kv_cache_dtype must be one of auto, f32, f16, int8, fp8, fp8_e4m3, got bf16/,
    );
    expect(llmOptions({ kv_cache_dtype: 'int8' }).kvCacheDtype).toBe('int8');
    expect(llmOptions({ kv_cache_dtype: 'auto' }).kvCacheDtype).toBe('auto');
    expect(() => llmOptions({ quantize: 'int3' })).toThrow(/quantize must be int8 or int4/);
    expect(llmOptions({ quantization: 'awq' }).quantization).toBe('awq');
    expect(() => llmOptions({ quantization: 'bitsandbytes' })).toThrow(
      /quantization must be gptq or awq, got bitsandbytes/,
    );
    expect(llmOptions({ activations: 'f32' }).activations).toBe('f32');
    expect(llmOptions({ activations: 'int8' }).activations).toBe('int8');
    expect(() => llmOptions({ activations: 'f16' })).toThrow(/activations must be int8 or f32, got f16/);
    expect(() => llmOptions({ modle: 'x' })).toThrow(/unknown argument modle/);
  });

  it('LLMServer refuses an activations value other than int8 or f32 before loading anything', () => {
    expect(() => new LLMServer({ activations: 'f16' as 'f32' })).toThrow(LLMServerConfigError);
    expect(() => new LLMServer({ activations: 'f16' as 'f32' })).toThrow(/activations must be 'int8' or 'f32'/);
  });
});
