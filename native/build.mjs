// `npm install` builds the addon through this script: it checks the toolchain first so a missing
// compiler, make, python3 or Node headers gives a message saying what to install, then runs the
// node-gyp that ships with npm (no network: the headers come from npm's nodedir or Node's prefix).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = path.dirname(fileURLToPath(import.meta.url));
const log = (msg) => console.log(`[@flotilla/native] ${msg}`);

function die(msg) {
  console.error(`\n[@flotilla/native] cannot build the native engine: ${msg}\n`);
  process.exit(1);
}

function have(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}

function checkToolchain() {
  const cxx = process.env.CXX ?? 'g++';
  if (!have(cxx)) die(`no C++17 compiler (${cxx}). Install one: apt-get install g++ (Debian/Ubuntu), dnf install gcc-c++ (Fedora), xcode-select --install (macOS).`);
  if (!have('make')) die('make is missing. Install it: apt-get install make (or build-essential).');
  if (!have(process.env.PYTHON ?? 'python3')) die('python3 (needed by node-gyp) is missing. Install it: apt-get install python3.');
}

function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..')].filter(Boolean);
  for (const dir of candidates) {
    if (existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) return dir;
  }
  die(`Node's C headers (include/node/node_api.h) were not found in ${candidates.join(' or ')}. ` +
    'Install them (apt-get install libnode-dev, or use an official Node.js build which ships them) ' +
    'or point npm at them: npm config set nodedir /path/to/node');
}

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {}
  const found = candidates.find((p) => existsSync(p));
  if (!found) die('node-gyp was not found (it ships with npm). Reinstall npm, or install node-gyp: npm install -g node-gyp.');
  return found;
}

function run(gyp, args) {
  const r = spawnSync(process.execPath, [gyp, ...args], { cwd: here, stdio: 'inherit' });
  if (r.status !== 0) die(`node-gyp ${args[0]} failed (exit ${r.status}); see the compiler output above.`);
}

checkToolchain();
const nodedir = nodeDir();
const gyp = nodeGyp();
const jobs = String(Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length)));
log(`configuring with node-gyp (headers from ${nodedir})`);
run(gyp, ['configure', `--nodedir=${nodedir}`]);
log(`compiling (${jobs} jobs); this takes a minute the first time`);
run(gyp, ['build', `--nodedir=${nodedir}`, `--jobs=${jobs}`]);
log(`built ${path.join(here, 'build', 'Release', 'flotilla_native.node')}`);
