import { it } from 'vitest';
import { startServe } from '@flotilla/core';
import { elastic } from '/work/main/test/fixtures/apps/scaling.js';
it('dbg', async () => {
  const instance = await startServe({ applications: [{ name: 'z', app: elastic() }], checkpoint: false });
  instance.on('replica-state', (e) => console.log(Date.now() % 100000, 'replica', e.replicaId, e.state, e.reason));
  instance.on('scaling-decision', (e) => console.log(Date.now() % 100000, 'decision', e.from, e.to, e.reason, e.message));
  const handle = instance.getHandle('z');
  const t = setInterval(() => { const d = instance.status().applications[0]!.deployments[0]!; console.log(Date.now() % 100000, d.targetReplicas, d.queued, d.ongoing, d.replicas.map((r) => r.state).join()); }, 300);
  await Promise.all(Array.from({ length: 12 }, () => handle.work(400)));
  await new Promise((r) => setTimeout(r, 3000));
  clearInterval(t);
  await instance.shutdown();
}, 60000);
