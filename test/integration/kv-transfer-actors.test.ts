/**
 * Large byte arrays across real actors (core/actor/transfer.ts): a thread replica moves a marked result
 * to the caller instead of cloning it (its own view is left empty), arguments move the same way, a
 * process replica carries the bytes intact over IPC, and a thread replica relays bytes from a process
 * replica to another thread replica. Checked by SHA-256 of a position-dependent pattern.
 */
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, transfer, type ServeInstance } from '@flotilla/core';
import { app, digest, pattern } from '../fixtures/apps/kv-transfer.js';

const MB = 1 << 20;

describe('byte arrays across thread and process replicas', () => {
  let instance: ServeInstance;
  beforeAll(async () => {
    instance = await startServe({ applications: [{ name: 'kv', routePrefix: '/kv', app: app() }] });
  });
  afterAll(async () => {
    await instance?.shutdown();
  });

  it('a thread replica moves a marked result (its view empties) and clones an unmarked one', async () => {
    const t = instance.getHandle('kv', 'BytesThread');
    const moved: Uint8Array = await t.make(8 * MB + 3, 7);
    expect(moved.byteLength).toBe(8 * MB + 3);
    expect(digest(moved)).toBe(digest(pattern(8 * MB + 3, 7)));
    expect(await t.lastLength()).toBe(0);
    const cloned: Uint8Array = await t.make(MB, 9, false);
    expect(digest(cloned)).toBe(digest(pattern(MB, 9)));
    expect(await t.lastLength()).toBe(MB);
  });

  it('a marked argument moves into a thread replica, intact', async () => {
    const t = instance.getHandle('kv', 'BytesThread');
    const b = pattern(5 * MB, 3);
    const want = digest(b);
    const seen = await t.check(transfer(b));
    expect(seen).toMatchObject({ length: 5 * MB, digest: want, mainThread: false, pid: process.pid });
    expect(b.byteLength).toBe(0);
  });

  it('a process replica carries the bytes intact both ways (marked ones through /dev/shm, files removed)', async () => {
    const p = instance.getHandle('kv', 'BytesProcess');
    const got: Uint8Array = await p.make(16 * MB + 1, 11);
    expect(digest(got)).toBe(digest(pattern(16 * MB + 1, 11)));
    const seen = await p.check(transfer(pattern(3 * MB, 5)));
    expect(seen.digest).toBe(digest(pattern(3 * MB, 5)));
    expect(seen.pid).not.toBe(process.pid);
    const unmarked: Uint8Array = await p.make(2 * MB, 12, false);
    expect(digest(unmarked)).toBe(digest(pattern(2 * MB, 12)));
    if (existsSync('/dev/shm')) expect(readdirSync('/dev/shm').filter((f) => f.startsWith('flotilla-kv-'))).toEqual([]);
  });

  it('a thread replica relays bytes from a process replica into another thread replica', async () => {
    const r = await instance.getHandle('kv').relay(4 * MB, 21);
    const want = digest(pattern(4 * MB, 21));
    expect(r.got).toBe(want);
    expect(r.atThread).toMatchObject({ length: 4 * MB, digest: want, mainThread: false });
    expect(r.leftHere).toBe(0); // moved, not cloned, on the thread-to-thread hop
  });
});
