// The native source list (sources.json) for the builds that are not CMake: binding.gyp runs
// `node sources.mjs addon core` to get a group's files; build.mjs calls checkSources() before
// building, so a .cpp/.cu under src/ or test/ that the list misses (or a listed file that is gone)
// stops the build instead of silently leaving one build without it. CMakeLists.txt reads the same
// JSON and makes the same check.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Group name → paths relative to native/. */
export function readSources() {
  const json = JSON.parse(readFileSync(path.join(here, 'sources.json'), 'utf8'));
  return Object.fromEntries(Object.entries(json).filter(([k]) => k !== '//'));
}

function walk(dir) {
  return readdirSync(path.join(here, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    return e.isDirectory() ? walk(rel) : /\.(cpp|cu)$/.test(e.name) ? [rel] : [];
  });
}

/** What is wrong with the list, in words (empty when it matches the tree). */
export function checkSources() {
  const listed = Object.values(readSources()).flat();
  const problems = [];
  const seen = new Set();
  for (const f of listed) {
    if (seen.has(f)) problems.push(`${f} is listed twice`);
    seen.add(f);
    if (!existsSync(path.join(here, f))) problems.push(`${f} is listed but does not exist`);
  }
  for (const f of [...walk('src'), ...walk('test')]) if (!seen.has(f)) problems.push(`${f} is not listed`);
  return problems;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const groups = readSources();
  const names = process.argv.slice(2);
  const unknown = names.filter((n) => !groups[n]);
  if (unknown.length > 0) {
    console.error(`sources.mjs: no group ${unknown.join(', ')} in sources.json`);
    process.exit(1);
  }
  console.log(names.flatMap((n) => groups[n]).join(' '));
}
