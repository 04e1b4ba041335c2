// `npm install` builds the addon through this script: it checks the toolchain first so a missing
// compiler, make, python3 or Node headers gives a message saying what to install, then runs the
// node-gyp that ships with npm (no network: the headers come from npm's nodedir or Node's prefix).
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { checkSources, readSources } from './sources.mjs';

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
  if (!have(cxx))
    die(
      `no C++17 compiler (${cxx}). Install one: apt-get install g++ (Debian/Ubuntu), dnf install gcc-c++ (Fedora), xcode-select --install (macOS).`,
    );
  if (!have('make')) die('make is missing. Install it: apt-get install make (or build-essential).');
  if (!have(process.env.PYTHON ?? 'python3'))
    die('python3 (needed by node-gyp) is missing. Install it: apt-get install python3.');
}

function nodeDir() {
  const candidates = [process.env.npm_config_nodedir, path.resolve(path.dirname(process.execPath), '..')].filter(
    Boolean,
  );
  for (const dir of candidates) {
    if (existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) return dir;
  }
  die(
    `Node's C headers (include/node/node_api.h) were not found in ${candidates.join(' or ')}. ` +
      'Install them (apt-get install libnode-dev, or use an official Node.js build which ships them) ' +
      'or point npm at them: npm config set nodedir /path/to/node',
  );
}

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(
      path.dirname(process.execPath),
      '..',
      'lib',
      'node_modules',
      'npm',
      'node_modules',
      'node-gyp',
      'bin',
      'node-gyp.js',
    ),
  ].filter(Boolean);
  try {
    candidates.push(createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js'));
  } catch {}
  const found = candidates.find((p) => existsSync(p));
  if (!found)
    die('node-gyp was not found (it ships with npm). Reinstall npm, or install node-gyp: npm install -g node-gyp.');
  return found;
}

function run(gyp, args) {
  const r = spawnSync(process.execPath, [gyp, ...args], { cwd: here, stdio: 'inherit' });
  if (r.status !== 0) die(`node-gyp ${args[0]} failed (exit ${r.status}); see the compiler output above.`);
}

// --- CUDA (optional) ---------------------------------------------------------------------------
// FLOTILLA_CUDA=0 skips it; FLOTILLA_CUDA=1 makes a failed CUDA compile fatal (else: CPU-only build).
// nvcc is taken from $CUDA_HOME/bin, then PATH. Objects are rebuilt only when a source or header changed.
function findNvcc() {
  if (process.env.FLOTILLA_CUDA === '0') return null;
  const home = process.env.CUDA_HOME ?? process.env.CUDA_PATH;
  if (home && existsSync(path.join(home, 'bin', 'nvcc'))) return path.join(home, 'bin', 'nvcc');
  const r = spawnSync('sh', ['-c', 'command -v nvcc'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

function newest(files) {
  return Math.max(0, ...files.map((f) => statSync(f).mtimeMs));
}

function runAsync(cmd, args) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd: here, stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('close', (code) => resolve(code));
    p.on('error', () => resolve(-1));
  });
}

async function buildCuda(nvcc) {
  // the toolkit root: CUDA_HOME, else beside nvcc, else what a wrapper script execs, else /usr/local/cuda
  const homes = [process.env.CUDA_HOME, process.env.CUDA_PATH, path.dirname(path.dirname(realpathSync(nvcc)))];
  try {
    const m = /exec\s+(\S+\/bin\/nvcc)/.exec(readFileSync(nvcc, 'utf8').slice(0, 4096));
    if (m) homes.push(path.dirname(path.dirname(m[1])));
  } catch {}
  homes.push('/usr/local/cuda');
  const cudaHome = homes.filter(Boolean).find((h) => existsSync(path.join(h, 'include', 'cuda_runtime.h'))) ?? homes[2];
  const srcDir = path.join(here, 'src', 'cuda'),
    outDir = path.join(here, 'build', 'cuda');
  mkdirSync(outDir, { recursive: true });
  const headers = [
    ...readdirSync(srcDir)
      .filter((f) => /\.(cuh|h)$/.test(f))
      .map((f) => path.join(srcDir, f)),
    ...readdirSync(path.join(here, 'src', 'core'))
      .filter((f) => f.endsWith('.h'))
      .map((f) => path.join(here, 'src', 'core', f)),
    path.join(here, 'src', 'backend.h'),
  ];
  const hdrTime = newest(headers);
  const sources = readSources().cuda.map((f) => path.basename(f)); // all in src/cuda (sources.json)
  const archs = (process.env.FLOTILLA_CUDA_ARCHS ?? '80,90')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const gencode = archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
  gencode.push('-gencode', `arch=compute_${archs[archs.length - 1]},code=compute_${archs[archs.length - 1]}`); // PTX for newer GPUs
  const flags = ['-std=c++17', '-O3', '-Xcompiler', '-fPIC', ...gencode];
  const todo = sources.filter((f) => {
    const obj = path.join(outDir, f.replace(/\.cu$/, '.o'));
    return !existsSync(obj) || statSync(obj).mtimeMs < Math.max(hdrTime, statSync(path.join(srcDir, f)).mtimeMs);
  });
  const jobsCuda = Math.max(1, Number(process.env.FLOTILLA_CUDA_JOBS ?? 2));
  log(
    `CUDA: ${nvcc} (sm_${archs.join(', sm_')}); ${todo.length} of ${sources.length} kernel files to compile, ${jobsCuda} at a time (slow: about a minute each)`,
  );
  const t0 = Date.now();
  let next = 0,
    done = 0,
    failed = false;
  const worker = async () => {
    while (next < todo.length && !failed) {
      const f = todo[next++],
        t = Date.now();
      log(`CUDA: compiling ${f} ...`);
      const code = await runAsync(nvcc, [
        ...flags,
        '-c',
        path.join(srcDir, f),
        '-o',
        path.join(outDir, f.replace(/\.cu$/, '.o')),
      ]);
      if (code !== 0) failed = true;
      else log(`CUDA: [${++done}/${todo.length}] ${f} compiled in ${((Date.now() - t) / 1000).toFixed(0)} s`);
    }
  };
  await Promise.all(Array.from({ length: jobsCuda }, worker));
  if (failed) return null;
  const lib = path.join(outDir, 'libflotilla_cuda.a');
  const ar = spawnSync('ar', ['rcs', lib, ...sources.map((f) => path.join(outDir, f.replace(/\.cu$/, '.o')))], {
    stdio: 'inherit',
  });
  if (ar.status !== 0) return null;
  const libDirs = [
    path.join(cudaHome, 'lib64'),
    path.join(cudaHome, 'lib'),
    path.join(cudaHome, 'targets', 'x86_64-linux', 'lib'),
    path.join(cudaHome, 'targets', 'sbsa-linux', 'lib'),
  ];
  const stat = libDirs.map((d) => path.join(d, 'libcudart_static.a')).find((p) => existsSync(p));
  const dyn = libDirs.find((d) => existsSync(path.join(d, 'libcudart.so')));
  if (!stat && !dyn) {
    log('CUDA: no libcudart found next to nvcc');
    return null;
  }
  const cudart = stat ?? `-L${dyn} -Wl,-rpath,${dyn} -lcudart`;
  log(`CUDA: kernels ready in ${((Date.now() - t0) / 1000).toFixed(0)} s; cudart ${stat ? 'static' : 'shared'}`);
  return { lib, cudart };
}

// The AVX-512 kernels (src/cpu/kernels-avx512*.cpp) need a compiler that knows the flags; whether the
// CPU runs them is decided at run time, so a build host without AVX-512 still builds them.
const AVX512_FLAGS = [
  '-mavx2',
  '-mfma',
  '-mf16c',
  '-mavx512f',
  '-mavx512bw',
  '-mavx512dq',
  '-mavx512vl',
  '-mavx512vnni',
];
function compilerHasAvx512() {
  if (process.arch !== 'x64' || process.env.FLOTILLA_AVX512 === '0') return false;
  const probe =
    '#include <immintrin.h>\nint f(__m512i a) { return _mm512_reduce_add_epi32(_mm512_dpbusd_epi32(a, a, a)); }\n';
  const r = spawnSync(process.env.CXX ?? 'g++', ['-x', 'c++', '-std=c++17', '-fsyntax-only', ...AVX512_FLAGS, '-'], {
    input: probe,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  return r.status === 0;
}

checkToolchain();
const drift = checkSources();
if (drift.length > 0) die(`sources.json does not match the source tree:\n  ${drift.join('\n  ')}`);
const nodedir = nodeDir();
const gyp = nodeGyp();
const jobs = String(Math.max(1, Math.min(4, os.availableParallelism?.() ?? os.cpus().length)));
const nvcc = findNvcc();
const cuda = nvcc ? await buildCuda(nvcc) : null;
if (nvcc && !cuda) {
  if (process.env.FLOTILLA_CUDA === '1')
    die('the CUDA kernels failed to build (FLOTILLA_CUDA=1 asks for them); see the nvcc output above.');
  log('CUDA: build failed; continuing with the CPU backend only (set FLOTILLA_CUDA=1 to make this fatal)');
}
if (!nvcc)
  log(
    process.env.FLOTILLA_CUDA === '0'
      ? 'CUDA: disabled (FLOTILLA_CUDA=0)'
      : 'CUDA: nvcc not found; building the CPU backend only',
  );
// binding.gyp reads these (see its variables)
process.env.FLOTILLA_GYP_CUDA = cuda ? '1' : '0';
process.env.FLOTILLA_GYP_CUDA_LIB = cuda?.lib ?? '';
process.env.FLOTILLA_GYP_CUDART = cuda?.cudart ?? '';
const avx512 = compilerHasAvx512();
process.env.FLOTILLA_GYP_AVX512 = avx512 ? '1' : '0';
log(
  avx512
    ? 'AVX-512 kernels compiled in (used where the CPU has AVX-512 VNNI)'
    : 'AVX-512 kernels skipped (compiler lacks the flags, not x64, or FLOTILLA_AVX512=0)',
);
// make does not see a changed define: when the CUDA or AVX-512 mode flips, drop the addon's objects
const modeFile = path.join(here, 'build', '.flotilla-cuda-mode'),
  mode = (cuda ? 'cuda' : 'cpu') + (avx512 ? '+avx512' : '');
if (existsSync(path.join(here, 'build')) && (!existsSync(modeFile) || readFileSync(modeFile, 'utf8') !== mode)) {
  rmSync(path.join(here, 'build', 'Release', 'obj.target', 'flotilla_native'), { recursive: true, force: true });
  rmSync(path.join(here, 'build', 'Release', 'flotilla_native.node'), { force: true });
}
log(`configuring with node-gyp (headers from ${nodedir}${cuda ? ', CUDA backend compiled in' : ''})`);
run(gyp, ['configure', `--nodedir=${nodedir}`]);
log(`compiling (${jobs} jobs); this takes a minute the first time`);
run(gyp, ['build', `--nodedir=${nodedir}`, `--jobs=${jobs}`]);
writeFileSync(modeFile, mode);
log(`built ${path.join(here, 'build', 'Release', 'flotilla_native.node')}${cuda ? ' with the CUDA backend' : ''}`);
