/**
 * One list of native sources: native/sources.json covers every .cpp/.cu under native/src and
 * native/test exactly once, and neither binding.gyp nor CMakeLists.txt names a source file itself
 * (both read the list), so the two builds cannot drift apart.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs module of the native package (no types)
import { checkSources, readSources } from '../../native/sources.mjs';
import { repoRoot } from '../helpers/models.js';

const native = path.join(repoRoot, 'native');

describe('native source list', () => {
  it('matches the source tree', () => {
    expect(checkSources()).toEqual([]);
  });

  it('is the only place source files are named', () => {
    for (const file of ['binding.gyp', 'CMakeLists.txt']) {
      const text = readFileSync(path.join(native, file), 'utf8');
      expect(text.match(/[\w-]+\/[\w./-]*\w\.(cpp|cu)\b/g) ?? [], file).toEqual([]);
      expect(text, file).toMatch(/sources\.(json|mjs)/);
    }
  });

  it('hands binding.gyp each group as its command expansion prints it', () => {
    const groups = readSources() as Record<string, string[]>;
    const out = execFileSync(process.execPath, ['sources.mjs', 'addon', 'core'], { cwd: native, encoding: 'utf8' });
    expect(out.trim().split(' ')).toEqual([...groups.addon!, ...groups.core!]);
    expect(() => execFileSync(process.execPath, ['sources.mjs', 'nope'], { cwd: native, stdio: 'pipe' })).toThrow();
  });
});
