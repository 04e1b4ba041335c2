/**
 * One JSON line per request: who (key id, never the key), what (route), how much (tokens, and their
 * cost in dollars when the deployment has prices), how it ended (status) and how long it took. Prompt text only when the server was asked to log it.
 */
export interface AuditRecord {
  requestId: string;
  keyId: string;
  route: string;
  status: number;
  promptTokens: number;
  completionTokens: number;
  /** What the tokens cost at the deployment's prices (DeploymentOptions.cost), in US dollars; absent without prices. */
  costUsd?: number;
  latencyMs: number;
  /** Set only with logPrompts. */
  prompt?: string;
  /** Error code when status >= 400. */
  error?: string;
}

export type AuditSink = 'stderr' | 'stdout' | 'none' | ((line: string) => void);

export class AuditLog {
  private readonly write: ((line: string) => void) | null;

  constructor(sink: AuditSink = 'stderr') {
    this.write =
      typeof sink === 'function'
        ? sink
        : sink === 'none'
          ? null
          : (line) => (sink === 'stdout' ? process.stdout : process.stderr).write(line);
  }

  record(r: AuditRecord): void {
    if (!this.write) return;
    const line = {
      ts: new Date().toISOString(),
      audit: 'llm-request',
      ...r,
      latencyMs: Math.round(r.latencyMs * 10) / 10,
    };
    this.write(`${JSON.stringify(line)}\n`);
  }
}
