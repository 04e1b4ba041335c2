/** Prompt size limits checked before tokenizing (prompt-limits.ts) and unreadable bodies as client errors (malformed-body.ts). */
import { describe, expect, it } from 'vitest';
import { ContextLimitError, InvalidJsonError, resolveLimits } from '../../packages/deployments/src/index.js';
import { asClientError, malformedBodyError } from '../../packages/deployments/src/malformed-body.js';
import { checkPromptSize, messagesBytes, promptBytes } from '../../packages/deployments/src/prompt-limits.js';

const limits = resolveLimits(undefined, 512); // maxPromptTokens 511 → maxPromptBytes 511 × 16

const thrown = (fn: () => void): unknown => {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
};

describe('prompt size limits', () => {
  it('defaults maxPromptBytes to maxPromptTokens × 16, and follows a configured maxPromptTokens or maxPromptBytes', () => {
    expect(limits.maxPromptBytes).toBe(511 * 16);
    expect(resolveLimits({ maxPromptTokens: 64 }, 512).maxPromptBytes).toBe(64 * 16);
    expect(resolveLimits({ maxPromptBytes: 100 }, 512).maxPromptBytes).toBe(100);
  });

  it('counts UTF-8 bytes of text, and of every message part the template renders', () => {
    expect(promptBytes({ text: 'héllo' })).toBe(6);
    expect(promptBytes({ tokenIds: [1, 2, 3] })).toBe(0);
    expect(
      messagesBytes([
        { role: 'user', content: '日本' },
        { role: 'assistant', content: [{ type: 'text', text: 'abc' }, { type: 'image_url' }], name: 'bo' },
      ]),
    ).toBe(4 + 6 + 9 + 3 + 2);
  });

  it('refuses text, messages and token ids over the limits as context_length errors naming the field', () => {
    const max = limits.maxPromptBytes;
    expect(thrown(() => checkPromptSize({ text: 'x'.repeat(max) }, limits, 'prompt'))).toBeUndefined();
    const text = thrown(() => checkPromptSize({ text: 'x'.repeat(max + 1) }, limits, 'inputs'));
    expect(text).toBeInstanceOf(ContextLimitError);
    expect(text).toMatchObject({ param: 'inputs', code: 'E_CONTEXT_LIMIT' });
    expect((text as Error).message).toMatch(
      `inputs: is ${max + 1} bytes; the limit is ${max} bytes (limits.maxPromptBytes)`,
    );
    // Multi-byte characters count as their bytes: max / 3 + 1 three-byte characters are over.
    const wide = thrown(() => checkPromptSize({ text: '語'.repeat(Math.floor(max / 3) + 1) }, limits, 'prompt'));
    expect(wide).toBeInstanceOf(ContextLimitError);
    const chat = thrown(() =>
      checkPromptSize(
        { messages: [{ role: 'user', content: [{ type: 'text', text: 'y'.repeat(max) }] }] },
        limits,
        'messages',
      ),
    );
    expect(chat).toMatchObject({ param: 'messages', code: 'E_CONTEXT_LIMIT' });
    expect(thrown(() => checkPromptSize({ tokenIds: new Array(511).fill(1) }, limits, 'prompt'))).toBeUndefined();
    const ids = thrown(() => checkPromptSize({ tokenIds: new Array(512).fill(1) }, limits, 'prompt_token_ids'));
    expect(ids).toMatchObject({ param: 'prompt_token_ids', code: 'E_CONTEXT_LIMIT' });
    expect((ids as Error).message).toMatch(/is 512 tokens; the limit is 511 tokens/);
  });
});

describe('unreadable bodies', () => {
  it('reports the proxy’s parse error, and a nesting problem without the runtime’s words', () => {
    const syntax = malformedBodyError('Unexpected end of JSON input');
    expect(syntax).toBeInstanceOf(InvalidJsonError);
    expect(syntax.message).toMatch(/^The request body is not valid JSON \(Unexpected end of JSON input\)/);
    const deep = malformedBodyError('JSON nested deeper than 128 levels; flatten the value');
    expect(deep.message).toMatch(/^The request body cannot be read \(JSON nested deeper than 128 levels/);
    const overflow = malformedBodyError('Maximum call stack size exceeded');
    expect(overflow.message).toMatch(/nests too deeply/);
    expect(overflow.message).not.toMatch(/call stack/i);
  });

  it('turns a stack overflow from walking a request into InvalidJsonError; other errors pass through', () => {
    let overflow: unknown;
    const deep: unknown[] = [];
    let at = deep;
    for (let i = 0; i < 200_000; i++) {
      const next: unknown[] = [];
      at.push(next);
      at = next;
    }
    try {
      JSON.stringify(deep);
    } catch (e) {
      overflow = e;
    }
    expect(overflow).toBeInstanceOf(RangeError);
    const err = asClientError(overflow);
    expect(err).toBeInstanceOf(InvalidJsonError);
    expect((err as Error).message).not.toMatch(/call stack/i);
    const other = new RangeError('Invalid array length');
    expect(asClientError(other)).toBe(other);
  });
});
