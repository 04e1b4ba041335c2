/**
 * Each workspace package declares what its sources load at run time (issue #23 item 6), with the
 * version the root declares, and the root lists every run-time dependency as a dependency (not a
 * devDependency), so `npm ci --omit=dev` installs what `node bin/serve.js` needs
 * (test/integration/packaging-image.test.ts runs that install).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/models.js';

interface PackageJson {
  name: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const readPkg = (dir: string) =>
  JSON.parse(readFileSync(path.join(repoRoot, dir, 'package.json'), 'utf8')) as PackageJson;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(ts|mts|mjs|cjs|js)$/.test(f) ? [p] : [];
  });
}

/** Packages a file loads at run time: static imports (not `import type`), export-from, import() and require(). */
export function runtimeImports(text: string): Set<string> {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const specs = new Set<string>();
  const patterns = [
    /^\s*import\s+(?!type\s)(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm,
    /^\s*export\s+(?!type\s)[^'"]*?\s+from\s+['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) specs.add(m[1]!);
  const builtins = new Set(builtinModules);
  const out = new Set<string>();
  for (const s of specs) {
    if (s.startsWith('.') || s.startsWith('/') || s.startsWith('node:') || builtins.has(s.split('/')[0]!)) continue;
    out.add(s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!);
  }
  return out;
}

const root = readPkg('.');
const workspaces = ['packages/core', 'packages/engine', 'packages/deployments'];

describe('workspace dependencies', () => {
  it('reads run-time imports, not type-only ones', () => {
    expect(
      runtimeImports(
        "import type { A } from 'types-only';\nimport { b } from '@scope/pkg/sub';\nimport 'side-effect';\n" +
          "export { c } from 'reexported';\nconst d = await import('dynamic');\nrequire('cjs/x');\nimport fs from 'node:fs';\n" +
          "import path from 'path';\nimport { e } from './local.js';\n// import x from 'commented';\n",
      ),
    ).toEqual(new Set(['@scope/pkg', 'side-effect', 'reexported', 'dynamic', 'cjs']));
  });

  for (const ws of workspaces) {
    it(`${ws} declares every package its sources load, at the root's version`, () => {
      const pkg = readPkg(ws);
      const declared = pkg.dependencies ?? {};
      const used = new Set<string>();
      for (const f of sources(path.join(repoRoot, ws, 'src')))
        for (const d of runtimeImports(readFileSync(f, 'utf8'))) used.add(d);
      used.delete(pkg.name);
      expect([...used].filter((d) => !(d in declared)).sort(), `${ws}/package.json dependencies`).toEqual([]);
      for (const [d, v] of Object.entries(declared)) {
        if (d.startsWith('@flotilla/')) continue;
        // The root lists it as a run-time dependency (npm ci --omit=dev keeps it), at the same version.
        expect(root.dependencies?.[d] ?? pkg.dependencies?.[d], d).toBe(v);
        expect(root.devDependencies?.[d], `${d} is no devDependency of the root`).toBeUndefined();
      }
    });
  }

  it('has bin/serve.js load only run-time dependencies', () => {
    for (const d of runtimeImports(readFileSync(path.join(repoRoot, 'bin/serve.js'), 'utf8')))
      expect(root.dependencies, d).toHaveProperty([d]);
  });
});
