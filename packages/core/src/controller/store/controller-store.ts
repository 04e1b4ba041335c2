/**
 * Where the controller keeps what it cannot get back from the user's code: applications deployed onto a
 * head, deployment targets and versions, replicas on agents (to re-adopt), autoscaling state, decisions
 * and the node registry (one ControllerCheckpoint). The controller does not know which store it has:
 *
 * - FileControllerStore (file-store.ts): the embedded default, a checkpoint file on this machine. One head;
 *   a file left behind is a controller that died.
 * - EtcdControllerStore (etcd-store.ts): etcd, shared by several heads; only the elected leader writes
 *   (each write is fenced on its election key), standbys watch, and whoever leads next loads it.
 *
 * Leadership (leadership.ts) is separate: the embedded store is always led by its one head.
 */
import type { ControllerCheckpoint } from '../checkpoint.js';

export interface ControllerStore {
  /** For logs and status: 'file PATH' or 'etcd://HOST:PORT/NAME'. */
  readonly description: string;
  /**
   * The state a controller taking over starts from: the file store's checkpoint of a controller that
   * died, etcd's last leader's state. Undefined when there is none.
   */
  load(): Promise<ControllerCheckpoint | undefined>;
  /** Writes the state; the latest call wins. Rejects when it could not be written (the caller reports it). */
  save(state: ControllerCheckpoint): Promise<void>;
  /**
   * A clean stop of the controller. The file store removes its checkpoint (a file found at start-up then
   * means a crash); etcd keeps the applications for the next leader, without the replicas just stopped.
   */
  retire(state: ControllerCheckpoint): Promise<void>;
  /** Calls `onChange` with each state another head saves (standbys); returns the unsubscribe. */
  watch(onChange: (state: ControllerCheckpoint) => void): () => void;
  close(): Promise<void>;
}

/** The state without the replicas on agents: what a clean stop leaves (they were stopped with it). */
export function withoutReplicas(state: ControllerCheckpoint): ControllerCheckpoint {
  return {
    ...state,
    apps: state.apps.map((a) => ({ ...a, deployments: a.deployments.map((d) => ({ ...d, replicas: [] })) })),
  };
}

/** A parsed state that is not a checkpoint of this format is ignored rather than half-restored. */
export function isCheckpoint(value: unknown): value is ControllerCheckpoint {
  const v = value as ControllerCheckpoint | undefined;
  return v?.format === 1 && Array.isArray(v.apps);
}
