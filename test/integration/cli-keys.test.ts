/**
 * Keys and limits from the command line and the config file, through real `serve` processes: `serve run
 * --api-key-file` with a config file's `auth.admin_key_file` and `http_options.max_connections`; `serve status`
 * and `serve shutdown` without a key are refused with a hint, with `--key-file` they work (shutdown only with
 * an admin key), and the instance drains and exits 0.
 */
import { expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cliProcesses, freePort } from '../helpers/cli-processes.js';
import { eventually } from '../helpers/ingress.js';

const { serve } = cliProcesses();
const API = 'cli-api-key-0001';
const ADMIN = 'cli-admin-key-001';

it('serve run takes key files from flags and the config; status and shutdown send a key', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-cli-keys-'));
  const file = (name: string, text: string) => {
    writeFileSync(path.join(dir, name), text);
    return path.join(dir, name);
  };
  const apiFile = file('api.txt', `# users\n${API}\n`);
  const adminFile = file('admin.txt', `${ADMIN}\n`);
  const config = file(
    'serve.yaml',
    `auth: { admin_key_file: ${adminFile} }\nhttp_options: { max_connections: 16 }\napplications: [{ name: echo }]\n`,
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const run = serve([
    'run',
    'test/fixtures/apps/ingress-secure.ts:echo',
    '--port',
    String(port),
    '--grpc-port',
    '0',
    '--config',
    config,
    '--api-key-file',
    apiFile,
  ]);
  const exited = run.exited;
  await eventually(() => run.out().includes('/-/healthz') || run.child.exitCode !== null, 60_000, 'the banner');
  expect(run.child.exitCode, run.out()).toBeNull();
  const post = (key?: string) =>
    fetch(`${url}/add`, {
      method: 'POST',
      body: '[2, 3]',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    });
  expect((await post()).status).toBe(401);
  expect(await (await post(API)).json()).toBe(5);
  expect(await (await post(ADMIN)).json()).toBe(5);

  const cli = async (args: string[]) => {
    const p = serve(args);
    const code = await p.exited;
    return { code, out: p.out() };
  };
  const refused = await cli(['status', '--address', url]);
  expect(refused.code).not.toBe(0);
  expect(refused.out).toMatch(/401[\s\S]*--key-file/);
  const status = await cli(['status', '--address', url, '--json', '--key-file', adminFile]);
  expect(status.code, status.out).toBe(0);
  expect(JSON.parse(status.out).applications[0].name).toBe('echo');
  expect((await cli(['shutdown', '--address', url, '--key-file', apiFile])).code).not.toBe(0);
  expect(run.child.exitCode).toBeNull();
  const stopped = await cli(['shutdown', '--address', url, '--key-file', adminFile]);
  expect(stopped.code, stopped.out).toBe(0);
  expect(await exited).toBe(0);
}, 120_000);
