/** lora_modules and the LoRA slot options of LLMServer (pure parsing: openai/lora-routes.ts). */
import { describe, expect, it } from 'vitest';
import { loraEngineOptions, parseLoraModules } from '../../packages/deployments/src/openai/lora-routes.js';

describe('lora_modules', () => {
  it("parses vLLM's name=path,name=path and a record, keeping the order", () => {
    expect(parseLoraModules('sql=/a/sql, chat=/b/c=d')).toEqual([
      { name: 'sql', path: '/a/sql' },
      { name: 'chat', path: '/b/c=d' },
    ]);
    expect(parseLoraModules({ x: '/x' })).toEqual([{ name: 'x', path: '/x' }]);
    expect(parseLoraModules(undefined)).toEqual([]);
  });

  it('refuses malformed entries and duplicate names', () => {
    expect(() => parseLoraModules('sql')).toThrow(/'sql' is not name=path/);
    expect(() => parseLoraModules('=/a')).toThrow(/not name=path/);
    expect(() => parseLoraModules('a=/x,a=/y')).toThrow(/'a' is given twice/);
  });

  it('gives the engine slots only when adapters are asked for', () => {
    expect(loraEngineOptions({})).toEqual({});
    expect(loraEngineOptions({ loraModules: 'a=/a' })).toEqual({ maxLoras: 4 });
    expect(loraEngineOptions({ loraModules: 'a=/a,b=/b,c=/c,d=/d,e=/e', maxLoraRank: 64 })).toEqual({
      maxLoras: 5,
      maxLoraRank: 64,
    });
    expect(loraEngineOptions({ maxLoras: 2 })).toEqual({ maxLoras: 2 });
    expect(() => loraEngineOptions({ maxLoras: -1 })).toThrow(/max_loras/);
  });
});
