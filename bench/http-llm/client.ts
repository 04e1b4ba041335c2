/**
 * The HTTP load client of bench/http-llm, run in a child process of its own (forked by load-client.ts):
 * 64 fetch clients parsing SSE cost about as much CPU as the proxy itself, and in the server's process
 * they would compete with it for one event loop. Answers each `{ url, streams, maxTokens }` request
 * with the level's result and the CPU time this process spent on it.
 */
import { httpLevel } from './load.js';

interface LevelRequest {
  url: string;
  streams: number;
  maxTokens: number;
}

process.on('message', (req: LevelRequest) => {
  const cpu0 = process.cpuUsage();
  httpLevel(req.url, req.streams, req.maxTokens).then(
    (result) => {
      const cpu = process.cpuUsage(cpu0);
      process.send!({ ok: true, result, clientCpuMs: (cpu.user + cpu.system) / 1000 });
    },
    (err: Error) => process.send!({ ok: false, error: err.stack ?? err.message }),
  );
});
process.on('disconnect', () => process.exit(0));
