/** TEMPORARY (profiling only): BenchLLM that profiles its own worker thread for PROF_MS, then writes a .cpuprofile. */
import inspector from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { deployment } from '@flotilla/core';
import { LLMServer } from '@flotilla/deployments';

const ms = Number(process.env.PROF_MS ?? 0);
if (ms > 0) {
  const s = new inspector.Session();
  s.connect();
  s.post('Profiler.enable', () => s.post('Profiler.setSamplingInterval', { interval: 200 }, () => s.post('Profiler.start', () => {
    setTimeout(() => s.post('Profiler.stop', (err, r) => {
      writeFileSync(`/tmp/prof/replica-${Date.now()}.cpuprofile`, JSON.stringify(r.profile));
    }), ms);
  })));
}

@deployment({ maxOngoingRequests: 512, placement: 'thread' })
export class BenchLLM extends LLMServer {}
