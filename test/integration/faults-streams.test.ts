import { afterEach, describe, expect, it } from 'vitest';
import { ActorDiedError, startServe, type ServeInstance } from '@flotilla/core';
import { doomed, doomedRelay } from '../fixtures/apps/scaling.js';

/** Reads a stream to its end; returns what arrived and how it ended. */
async function drain(stream: AsyncIterable<unknown>): Promise<{ items: unknown[]; error: unknown }> {
  const items: unknown[] = [];
  try {
    for await (const item of stream) items.push(item);
    return { items, error: undefined };
  } catch (error) {
    return { items, error };
  }
}

describe('a stream whose replica dies mid-way ends with ActorDiedError, never a hang', () => {
  let instance: ServeInstance | undefined;
  afterEach(async () => {
    await instance?.shutdown();
    instance = undefined;
  });

  for (const placement of ['thread', 'process'] as const) {
    it(`${placement} replica`, { timeout: 180_000 }, async () => {
      instance = await startServe({
        applications: [{ name: 's', app: doomed(placement) }],
        checkpoint: false,
        startupTimeoutS: 120,
      });
      const { items, error } = await drain(instance.getHandle('s').stream.countThenDie(3));
      expect(items).toEqual([0, 1, 2]);
      expect(error).toBeInstanceOf(ActorDiedError);
      expect((error as ActorDiedError).data).toMatchObject({ accepted: true });
      expect((error as Error).message).toMatch(placement === 'thread' ? /thread exited/ : /process exited/);
      // The replica is replaced and the next stream is served (and dies the same way).
      const again = await drain(instance.getHandle('s').stream.countThenDie(1));
      expect(again.items).toEqual([0]);
      expect(again.error).toBeInstanceOf(ActorDiedError);
    });
  }

  it('through a process replica relaying the stream of a thread replica that dies', { timeout: 180_000 }, async () => {
    instance = await startServe({
      applications: [{ name: 'r', app: doomedRelay() }],
      checkpoint: false,
      startupTimeoutS: 120,
    });
    const { items, error } = await drain(instance.getHandle('r').stream.countThenDie(2));
    expect(items).toEqual([0, 1]);
    expect(error).toBeInstanceOf(ActorDiedError);
  });
});
