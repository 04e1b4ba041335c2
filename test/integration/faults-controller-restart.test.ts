import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startServe } from '@flotilla/core';
import { hold, restartable } from '../fixtures/apps/restartable.js';
import { eventually } from '../helpers/eventually.js';

const script = fileURLToPath(new URL('../fixtures/scripts/checkpoint-controller.ts', import.meta.url));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('controller restart from its checkpoint', () => {
  it('a controller killed with SIGKILL leaves no replica behind; the next one restores targets and history', {
    timeout: 300_000,
  }, async () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'flotilla-ckpt-')), 'controller.json');
    const child = spawn(process.execPath, ['--import', 'tsx', script, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`controller script exited with ${code}`)));
    });
    const { pids } = JSON.parse(line) as { pids: number[] };
    await eventually(
      () => JSON.parse(readFileSync(file, 'utf8')),
      (c) => c.apps[0]?.deployments[0]?.targetReplicas === 3,
    );
    child.kill('SIGKILL');
    // Process replicas exit when their channel to the dead controller closes.
    await eventually(
      () => pids.filter(alive),
      (left) => left.length === 0,
    );

    const instance = await startServe({
      applications: [{ name: 'r', app: restartable() }],
      checkpoint: file,
      autoscalingPolicy: hold,
      startupTimeoutS: 240,
    });
    try {
      const d = instance.status().applications[0]!.deployments[0]!;
      expect(d.targetReplicas).toBe(3);
      expect(d.replicas.filter((r) => r.state === 'RUNNING')).toHaveLength(3);
      expect(d.decisions!.map((x) => x.reason)).toEqual(['scale-up', 'restored']);
      expect(d.decisions!.at(-1)).toMatchObject({ from: 1, to: 3 });
      const pid = (await instance.getHandle('r').pid()) as number;
      expect(pids).not.toContain(pid);
    } finally {
      await instance.shutdown();
    }
    expect(existsSync(file)).toBe(false); // a clean shutdown leaves no checkpoint to restore
  });
});
