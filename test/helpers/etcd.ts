/**
 * A real etcd for tests (etcd-process.ts; .ci/run installs Debian's etcd-server), killed after the file.
 * `etcdBinary()` is undefined when none is installed, so that a test file can skip with the reason.
 */
import { afterAll } from 'vitest';
import { launchEtcd, type TestEtcd } from './etcd-process.js';

export { etcdBinary, NO_ETCD_REASON, type TestEtcd } from './etcd-process.js';

/** Call at the top of a describe: starts an etcd now (awaited by the caller) and kills it after the file. */
export function testEtcd(): () => Promise<TestEtcd> {
  const started: TestEtcd[] = [];
  afterAll(async () => {
    for (const e of started) await e.stop();
  });
  return async () => {
    const e = await launchEtcd();
    started.push(e);
    return e;
  };
}
