/** The parent's side of client.ts: one forked load-client process, one level at a time. */
import { fork, type ChildProcess } from 'node:child_process';
import type { LevelResult } from './load.js';

export interface ClientLevel {
  result: LevelResult;
  /** CPU time of the client process during the level (user + system). */
  clientCpuMs: number;
}

type Reply = { ok: true; result: LevelResult; clientCpuMs: number } | { ok: false; error: string };

export class LoadClient {
  private constructor(private readonly child: ChildProcess) {}

  static start(): LoadClient {
    const child = fork(new URL('./client.ts', import.meta.url), [], {
      execArgv: ['--import', 'tsx'],
      stdio: 'inherit',
    });
    return new LoadClient(child);
  }

  level(url: string, streams: number, maxTokens: number): Promise<ClientLevel> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`load client exited with code ${code}`));
      this.child.once('exit', onExit);
      this.child.once('message', (reply: Reply) => {
        this.child.off('exit', onExit);
        if (reply.ok) resolve({ result: reply.result, clientCpuMs: reply.clientCpuMs });
        else reject(new Error(`load client: ${reply.error}`));
      });
      this.child.send({ url, streams, maxTokens });
    });
  }

  close(): void {
    this.child.disconnect();
  }
}
