/**
 * The Dockerfile's build and run stages, run as the shell steps they are (no Docker daemon here), and
 * the production install they make (issue #23 items 3 and 6):
 *
 *   1. the build context: the files a clone holds (git's tracked and untracked-but-not-ignored files of
 *      this working tree, so uncommitted work is what is tested), less .dockerignore's patterns;
 *   2. each stage in a directory of its own standing for its filesystem root: WORKDIR, ENV, ARG, COPY
 *      (from the context or --from another stage) as the Dockerfile says; RUN steps that set up the
 *      system (apt-get, useradd) are checked instead of run (the toolchain they install must be here;
 *      the user they make must be the one USER names); every other RUN (`npm ci --omit=dev`, which
 *      builds the native addon, and the clean-up) runs in the stage's WORKDIR, npm using its cache first;
 *      the `node` stage (Node's official image) is this machine's Node of the same major version;
 *   3. the run stage's /app holds production dependencies only, the addon and no sources of it;
 *   4. ENTRYPOINT + CMD start the default application there (the LLM server on the bundled model) with
 *      no devDependencies: /-/healthz, a completion, the HEALTHCHECK command; SIGTERM drains and exits 0;
 *   5. the same for examples/pipeline.ts (thread and child-process replicas).
 *
 * The first run compiles the addon (a few minutes on two cores); progress is printed as it goes.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envPairs, execForm, parseDockerfile, substitute, type Instruction } from '../helpers/dockerfile.js';
import { repoRoot } from '../helpers/models.js';

const progress = (line: string) => process.stdout.write(`[packaging-image] ${line}\n`);

interface StageState {
  name: string;
  root: string;
  workdir: string;
  args: Record<string, string>;
  env: Record<string, string>;
  user?: string;
  entrypoint?: string[];
  cmd?: string[];
  healthcheck?: string[];
  /** The uid useradd was asked for. */
  uid?: string;
  /** An image used only as a source of files (FROM x AS name, no instructions): this machine stands in. */
  external: boolean;
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'flotilla-image-'));
const context = path.join(tmp, 'context');
const stages = new Map<string, StageState>();
let globalArgs: Record<string, string> = {};
const skipped: string[] = [];

// --- the build context -------------------------------------------------------------------------------

/** .dockerignore's patterns as tests on a relative path (a directory's pattern covers what is under it). */
function dockerignore(text: string): (rel: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pat = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, '');
      const re = pat
        .split('/')
        .map((seg) =>
          seg === '**'
            ? '(?:.*)'
            : seg
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
      return { negate, re: new RegExp(`^${re}(?:/.*)?$`) };
    });
  return (rel) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(rel)) ignored = !r.negate;
    return ignored;
  };
}

function makeContext(): number {
  const ignored = dockerignore(readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8'));
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: repoRoot,
    maxBuffer: 64 * 1024 * 1024,
  })
    .toString()
    .split('\0')
    .filter(Boolean);
  let n = 0;
  for (const rel of new Set(listed)) {
    const src = path.join(repoRoot, rel);
    if (ignored(rel) || !existsSync(src) || !statSync(src).isFile()) continue;
    mkdirSync(path.dirname(path.join(context, rel)), { recursive: true });
    copyFileSync(src, path.join(context, rel));
    n++;
  }
  return n;
}

// --- the stages --------------------------------------------------------------------------------------

const inRoot = (s: StageState, p: string) => path.join(s.root, p);

function resolveIn(s: StageState, p: string): string {
  return path.posix.isAbsolute(p) ? p : path.posix.join(s.workdir, p);
}

/** COPY semantics: a directory's contents go into the destination; files into it when it is a directory. */
function copyInto(src: string, dest: string, destIsDir: boolean): void {
  if (!existsSync(src)) throw new Error(`COPY: ${src} is not in the build context or stage`);
  if (statSync(src).isDirectory()) {
    mkdirSync(dest, { recursive: true });
    cpSync(src, dest, { recursive: true, verbatimSymlinks: true });
  } else {
    const to = destIsDir ? path.join(dest, path.basename(src)) : dest;
    mkdirSync(path.dirname(to), { recursive: true });
    copyFileSync(src, to);
  }
}

/** What the system-setup RUN steps install or create, checked on this machine instead. */
const TOOLS: Record<string, string[]> = {
  'g++': ['g++', '--version'],
  make: ['make', '--version'],
  python3: ['python3', '--version'],
};

function systemStep(s: StageState, cmd: string): boolean {
  const parts = cmd.split('&&').map((p) => p.trim());
  const system = parts.map((p) => /^(apt-get |groupadd |useradd |rm -rf \/var\/lib\/apt)/.test(p));
  if (!system.some(Boolean)) return false;
  if (!system.every(Boolean)) throw new Error(`a RUN mixes system setup and project steps (split it): ${cmd}`);
  for (const p of parts) {
    const install = /^apt-get install (.*)$/.exec(p);
    if (install) {
      for (const pkg of install[1]!.split(/\s+/).filter((w) => w && !w.startsWith('-'))) {
        const probe = TOOLS[pkg];
        if (!probe) throw new Error(`the test does not know how to check for the package ${pkg}: add it to TOOLS`);
        expect(spawnSync(probe[0]!, probe.slice(1)).status, `${pkg} (installed by the build stage) is here`).toBe(0);
      }
    }
    const uid = /^useradd .*--uid (\d+)/.exec(p);
    if (uid) s.uid = uid[1];
  }
  skipped.push(`${s.name}: ${cmd}`);
  return true;
}

function npmCache(): string {
  return execFileSync('npm', ['config', 'get', 'cache'], { encoding: 'utf8' }).trim();
}

function runStep(s: StageState, cmd: string): void {
  // The steps run in a temporary directory standing for the stage's root: an absolute path would leave it.
  expect(cmd, 'RUN steps on /app use relative paths').not.toMatch(/(^|\s)\//);
  const cwd = inRoot(s, s.workdir);
  const home = path.join(tmp, `home-${s.name}`);
  mkdirSync(home, { recursive: true });
  progress(`${s.name}: RUN ${cmd}`);
  const started = Date.now();
  const r = spawnSync('sh', ['-c', cmd], {
    cwd,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: {
      PATH: process.env.PATH,
      HOME: home,
      TMPDIR: os.tmpdir(),
      npm_config_cache: npmCache(),
      npm_config_prefer_offline: 'true',
      ...s.args,
      ...s.env,
    },
  });
  progress(`${s.name}: RUN finished in ${Math.round((Date.now() - started) / 1000)} s (exit ${r.status})`);
  expect(r.status, `RUN ${cmd}`).toBe(0);
}

function execute(s: StageState, ins: Instruction, buildArgs: Record<string, string>): void {
  const vars = () => ({ ...s.args, ...s.env });
  switch (ins.op) {
    case 'ARG': {
      const eq = ins.args.indexOf('=');
      const name = eq < 0 ? ins.args : ins.args.slice(0, eq);
      const value = buildArgs[name] ?? (eq < 0 ? globalArgs[name] : ins.args.slice(eq + 1));
      if (value !== undefined) s.args[name] = value;
      return;
    }
    case 'ENV':
      for (const [k, v] of envPairs(ins.args)) s.env[k] = substitute(v, vars());
      return;
    case 'WORKDIR':
      s.workdir = resolveIn(s, substitute(ins.args, vars()));
      mkdirSync(inRoot(s, s.workdir), { recursive: true });
      return;
    case 'COPY': {
      const words = substitute(ins.args, vars()).split(' ');
      const dest = resolveIn(s, words.pop()!);
      const from = ins.flags.from;
      const source = from ? stages.get(from) : undefined;
      if (from && !source) throw new Error(`COPY --from=${from}: no such stage`);
      if (source?.external) {
        // Node's official image: this machine's Node (the same major version, checked below) stands in.
        for (const w of words) expect(w.startsWith('/usr/local/'), `COPY --from=${from} ${w}: Node's files`).toBe(true);
        skipped.push(`${s.name}: COPY --from=${from} ${words.join(' ')}`);
        return;
      }
      const destIsDir = words.length > 1 || ins.args.endsWith('/');
      for (const w of words) copyInto(source ? inRoot(source, w) : path.join(context, w), inRoot(s, dest), destIsDir);
      return;
    }
    case 'RUN':
      if (!systemStep(s, ins.args)) runStep(s, ins.args);
      return;
    case 'USER':
      s.user = substitute(ins.args, vars());
      return;
    case 'ENTRYPOINT':
      s.entrypoint = execForm(ins.args);
      return;
    case 'CMD':
      s.cmd = execForm(ins.args);
      return;
    case 'HEALTHCHECK':
      s.healthcheck = execForm(ins.args.replace(/^CMD\s+/, ''));
      return;
    case 'EXPOSE':
    case 'LABEL':
      return;
    default:
      throw new Error(`line ${ins.line}: the test cannot run ${ins.op}; teach it`);
  }
}

function buildImage(buildArgs: Record<string, string> = {}): void {
  const file = parseDockerfile(readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8'), buildArgs);
  globalArgs = file.globalArgs;
  for (const st of file.stages) {
    const base = stages.get(st.from);
    const s: StageState = {
      name: st.name,
      root: path.join(tmp, 'stages', st.name),
      workdir: base?.workdir ?? '/',
      args: {},
      env: { ...(base?.env ?? {}) },
      external: !base && st.instructions.length === 0,
    };
    mkdirSync(s.root, { recursive: true });
    if (base) cpSync(base.root, s.root, { recursive: true, verbatimSymlinks: true });
    stages.set(st.name, s);
    progress(`stage ${st.name} FROM ${st.from}${s.external ? ' (this machine stands in)' : ''}`);
    for (const ins of st.instructions) execute(s, ins, buildArgs);
  }
}

// --- running the image -------------------------------------------------------------------------------

interface Started {
  url: string;
  child: ChildProcess;
  output(): string;
  exit: Promise<number | null>;
}

/** `args` as the container runs them: in the run stage's WORKDIR, with its ENV and a HOME of its own only. */
async function startContainer(run: StageState, args: string[]): Promise<Started> {
  const [bin, ...rest] = args;
  expect(bin).toBe('node');
  const home = path.join(tmp, `home-container-${Date.now()}`);
  mkdirSync(home, { recursive: true });
  const child = spawn(process.execPath, rest, {
    cwd: inRoot(run, run.workdir),
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: home, TMPDIR: os.tmpdir(), ...run.env },
  });
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + 120_000;
  for (;;) {
    const m = /(https?:\/\/[^/\s]+)\/-\/healthz/.exec(out);
    if (m) return { url: m[1]!.replace(/\/\/(0\.0\.0\.0|\[::\])/, '//127.0.0.1'), child, output: () => out, exit };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the container did not start (exit ${child.exitCode}):\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopContainer(c: Started): Promise<number | null> {
  c.child.kill('SIGTERM');
  const timer = setTimeout(() => c.child.kill('SIGKILL'), 60_000);
  const code = await c.exit;
  clearTimeout(timer);
  return code;
}

const running: Started[] = [];

describe('the Dockerfile, run as shell steps in a clean tree', () => {
  beforeAll(() => {
    const n = makeContext();
    progress(`build context: ${n} files in ${context}`);
    buildImage();
  }, 1_500_000);
  afterAll(async () => {
    for (const c of running) if (c.child.exitCode === null) c.child.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  });

  it('uses a context without build outputs, and an official Node image of this major version', () => {
    expect(existsSync(path.join(context, 'package-lock.json'))).toBe(true);
    for (const p of ['node_modules', 'native/build', '.git', 'test', 'bench'])
      expect(existsSync(path.join(context, p)), p).toBe(false);
    expect(globalArgs.NODE_IMAGE).toMatch(/^node:\d+/);
    expect(globalArgs.NODE_IMAGE!.split(':')[1]!.split('-')[0]).toBe(process.versions.node.split('.')[0]);
    // The system steps checked rather than run: the toolchain (build) and the user (run).
    expect(skipped.some((s) => s.startsWith('build: apt-get'))).toBe(true);
    expect(skipped.some((s) => s.startsWith('run: groupadd'))).toBe(true);
  });

  it('builds a run stage with production dependencies, the addon and no toolchain leftovers, as a non-root user', () => {
    const run = stages.get('run')!;
    const app = inRoot(run, run.workdir);
    expect(run.workdir).toBe('/app');
    expect(run.user?.split(':')[0]).toBe(run.uid);
    expect(Number(run.uid)).toBeGreaterThan(0);
    expect(run.env.NODE_ENV).toBe('production');
    expect(existsSync(path.join(app, 'native/build/Release/flotilla_native.node'))).toBe(true);
    for (const gone of ['native/src', 'native/build/Release/obj.target', 'test', 'bench', 'docs'])
      expect(existsSync(path.join(app, gone)), gone).toBe(false);
    // What the CLI needs at run time is there; the devDependencies are not.
    for (const dep of ['tsx', 'esbuild', 'fastify', 'prom-client', 'yaml', '@huggingface/tokenizers', 'node-addon-api'])
      expect(existsSync(path.join(app, 'node_modules', dep, 'package.json')), dep).toBe(true);
    for (const dev of ['vitest', 'typescript', '@biomejs/biome', 'openai', 'madge', 'kubernetes-models'])
      expect(existsSync(path.join(app, 'node_modules', dev)), dev).toBe(false);
    // The workspace packages resolve inside /app (relative links that survive the copy between stages).
    for (const ws of readdirSync(path.join(app, 'node_modules/@flotilla')))
      expect(existsSync(path.join(app, 'node_modules/@flotilla', ws, 'package.json')), ws).toBe(true);
    expect(run.entrypoint).toEqual(['node', 'bin/serve.js']);
  });

  it("starts the image's default command (the LLM server), answers, passes its HEALTHCHECK and drains on SIGTERM", async () => {
    const run = stages.get('run')!;
    const c = await startContainer(run, [...run.entrypoint!, ...run.cmd!, '--port', '0', '--grpc-port', '0']);
    running.push(c);
    expect(run.cmd).toContain('--host');
    expect(await (await fetch(`${c.url}/-/healthz`)).text()).toBe('ok');
    // The model loads after the proxies start: wait for the LLM's own /health.
    for (
      let i = 0;
      (await fetch(`${c.url}/health`).then(
        (r) => r.status,
        () => 0,
      )) !== 200;
      i++
    ) {
      expect(i, c.output()).toBeLessThan(1200);
      await new Promise((r) => setTimeout(r, 100));
    }
    const res = await fetch(`${c.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }),
    });
    const body = (await res.json()) as { choices: Array<{ text: string }>; usage: { completion_tokens: number } };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.usage.completion_tokens).toBeGreaterThan(0);
    // HEALTHCHECK's command (port 8000 in the image) against this port.
    const port = new URL(c.url).port;
    const [hcBin, ...hcArgs] = run.healthcheck!.map((a) => a.replaceAll('127.0.0.1:8000', `127.0.0.1:${port}`));
    expect(hcBin).toBe('node');
    expect(spawnSync(process.execPath, hcArgs, { env: { PATH: process.env.PATH } }).status).toBe(0);
    expect(await stopContainer(c)).toBe(0);
    expect(c.output()).toMatch(/SIGTERM: draining[\s\S]*Flotilla stopped\./);
    // Once stopped, HEALTHCHECK fails.
    expect(spawnSync(process.execPath, hcArgs, { env: { PATH: process.env.PATH } }).status).toBe(1);
  }, 180_000);

  it('runs examples/pipeline.ts from the image (thread and child-process replicas)', async () => {
    const run = stages.get('run')!;
    const c = await startContainer(run, [
      ...run.entrypoint!,
      'run',
      'examples/pipeline.ts:app',
      '--port',
      '0',
      '--grpc-port',
      '0',
    ]);
    running.push(c);
    const routed = await fetch(`${c.url}/`, { method: 'POST', body: JSON.stringify({ text: 'the quick brown fox' }) });
    expect(routed.status).toBe(200);
    expect(((await routed.json()) as { result: { words: number } }).result.words).toBe(4);
    const stream = await fetch(`${c.url}/narrate`, {
      method: 'POST',
      headers: { accept: 'text/event-stream' },
      body: JSON.stringify(['one two three', 1]),
    });
    const text = await stream.text();
    expect(text.match(/"word":"(\w+)"/g)).toEqual(['"word":"one"', '"word":"two"', '"word":"three"']);
    expect(await stopContainer(c)).toBe(0);
  }, 180_000);
});
