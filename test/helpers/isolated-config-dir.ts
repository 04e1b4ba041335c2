/**
 * Vitest setup file: each test file gets its own Flotilla config directory (FLOTILLA_CONFIG_DIR, where a
 * cluster head keeps its generated cluster token), so tests never write into the real ~/.flotilla and
 * heads, agents and `serve deploy` started by one file (in process or as children, which inherit the
 * environment) share one token. A token in the outer environment is dropped for the same reason.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

const dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-config-'));
process.env.FLOTILLA_CONFIG_DIR = dir;
delete process.env.FLOTILLA_CLUSTER_TOKEN;
afterAll(() => rmSync(dir, { recursive: true, force: true }));
