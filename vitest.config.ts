import { defineConfig, type Plugin } from 'vitest/config';
import { transform } from 'esbuild';

/**
 * Node 20 cannot run TC39 decorators and vitest 4's default transform (oxc) does not lower them,
 * so every .ts file goes through esbuild first (the same lowering tsx does for `serve run`).
 */
function esbuildDecorators(): Plugin {
  return {
    name: 'flotilla-esbuild-decorators',
    enforce: 'pre',
    async transform(code, id) {
      if (!id.endsWith('.ts') || id.includes('node_modules')) return null;
      const out = await transform(code, {
        loader: 'ts',
        target: 'es2022',
        format: 'esm',
        sourcemap: true,
        sourcefile: id,
      });
      return { code: out.code, map: out.map };
    },
  };
}

export default defineConfig({
  plugins: [esbuildDecorators()],
  oxc: false,
  test: {
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    // A config directory per test file: cluster tokens never land in the real ~/.flotilla.
    setupFiles: ['test/helpers/isolated-config-dir.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
