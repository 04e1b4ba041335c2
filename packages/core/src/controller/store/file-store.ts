/**
 * The embedded ControllerStore: the checkpoint file of one head (checkpoint.ts). Synchronous underneath,
 * so a head can read it while it builds its controller (loadSync), as before there was a store interface.
 */
import { CheckpointStore, type ControllerCheckpoint } from '../checkpoint.js';
import type { ControllerStore } from './controller-store.js';

export class FileControllerStore implements ControllerStore {
  readonly description: string;
  private readonly file: CheckpointStore;

  constructor(path: string) {
    this.file = new CheckpointStore(path);
    this.description = `file ${path}`;
  }

  get path(): string {
    return this.file.file;
  }

  /** The checkpoint of a controller that died (its pid is gone), or undefined. */
  loadSync(): ControllerCheckpoint | undefined {
    return this.file.loadOrphaned();
  }

  async load(): Promise<ControllerCheckpoint | undefined> {
    return this.loadSync();
  }

  async save(state: ControllerCheckpoint): Promise<void> {
    this.file.save(state);
  }

  async retire(): Promise<void> {
    this.file.remove();
  }

  /** One head per file: nobody else writes it. */
  watch(): () => void {
    return () => {};
  }

  async close(): Promise<void> {}
}
