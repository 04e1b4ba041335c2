/** Model loading reports progress through the CLI's progress reporter (the real addon, stories260K). */
import { expect, it } from 'vitest';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { modelLoadProgress } from '../../packages/core/src/cli/progress.js';
import { describeWithModels, models } from '../helpers/models.js';

describeWithModels('model loading progress', () => {
  it('draws lines off a TTY and ends at 100% with every tensor counted', async () => {
    const written: string[] = [];
    const stream = {
      write: (s: string) => {
        written.push(s);
        return true;
      },
      isTTY: false,
    } as never;
    const seen: Array<[number, number]> = [];
    const report = modelLoadProgress('stories260K', { stream, lineIntervalMs: 0 });
    const engine = await LLMEngine.create({
      model: models.stories260K,
      kvCacheBytes: 4 << 20,
      onProgress: (done, total) => {
        seen.push([done, total]);
        report(done, total);
      },
    });
    await engine[Symbol.asyncDispose]();
    // The addon coalesces reports while JS is busy, so a tiny model may report only its last tensor.
    expect(seen.length).toBeGreaterThan(0);
    const [lastDone, total] = seen.at(-1)!;
    expect(lastDone).toBe(total);
    expect(written.at(-1)).toMatch(
      new RegExp(`^loading stories260K 100%  ${total}/${total}  \\d+\\.\\ds  tensors\\n$`),
    );
    expect(written.every((l) => !l.includes('\r'))).toBe(true);
  });
});
