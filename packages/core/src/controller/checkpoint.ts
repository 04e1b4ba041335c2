/**
 * The controller's checkpoint: a small JSON file rewritten (atomically: temp file + rename) whenever a
 * target changes, and removed on a clean shutdown, so a file that exists at start-up was left by a
 * controller that died. A restarted controller takes from it what the user's code and config cannot
 * give back: autoscaled targets, the policies' state and the decision history.
 *
 * Replicas are restarted, not re-adopted: thread replicas die with their process, and process replicas
 * exit when their IPC channel to the dead controller closes (actor-entry.ts), so none is left behind.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DeploymentSnapshot } from './deployment-state.js';

export interface ControllerCheckpoint {
  format: 1;
  savedAtMs: number;
  /** The controller's process; a checkpoint whose writer still runs is not taken over. */
  pid: number;
  /** `source`: how the app was deployed onto a running head (serve deploy's request), to deploy it again. */
  apps: { name: string; routePrefix: string; source?: unknown; deployments: DeploymentSnapshot[] }[];
  /** The cluster's agents when it was saved (a head's node registry), for the record and standbys' status. */
  nodes?: StoredNode[];
}

export interface StoredNode {
  id: string;
  address: string;
  resources: { cpus: number; gpus: number; memoryMb: number };
  labels: Record<string, string>;
}

/** Default location: one file per working directory and set of applications, under os.tmpdir()/flotilla. */
export function defaultCheckpointPath(appKeys: string[], cwd = process.cwd()): string {
  const key = createHash('sha256')
    .update(JSON.stringify([cwd, [...appKeys].sort()]))
    .digest('hex')
    .slice(0, 16);
  return path.join(os.tmpdir(), 'flotilla', `controller-${key}.json`);
}

/** The embedded store's file (store/file-store.ts wraps it as a ControllerStore). */
export class CheckpointStore {
  constructor(readonly file: string) {}

  save(checkpoint: ControllerCheckpoint): void {
    mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(checkpoint));
    renameSync(tmp, this.file);
  }

  /** The checkpoint of a controller that died, or undefined (none, unreadable, or its writer still runs). */
  loadOrphaned(): ControllerCheckpoint | undefined {
    let parsed: ControllerCheckpoint;
    try {
      parsed = JSON.parse(readFileSync(this.file, 'utf8')) as ControllerCheckpoint;
    } catch {
      return undefined;
    }
    if (parsed?.format !== 1 || !Array.isArray(parsed.apps)) return undefined;
    return isAlive(parsed.pid) ? undefined : parsed;
  }

  remove(): void {
    rmSync(this.file, { force: true });
  }
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
