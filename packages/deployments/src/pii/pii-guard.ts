/**
 * PiiGuard: the PII filter (pii-filter.ts) as a guard stage (guards/guard-stage.ts) in front of any
 * generation graph — LLMServer, HybridRouter, ResponseCache, a user's own class: prompts are redacted or
 * refused before they go downstream, and generated text is redacted across streamed chunks (or cut, in
 * 'block' mode), over the OpenAI and TGI HTTP APIs, gRPC llm.proto and handles alike.
 *
 *   @deployment() class Guard extends PiiGuard {}
 *   export const app = Guard.bind(Model.bind({ model }), { mode: 'block' });
 *
 * Counts per kind, place and mode are in `flotilla_pii_detections_total` (collectMetrics()); values are
 * never logged or counted.
 */
import type { DeploymentHandle } from '@flotilla/core';
import { Counter, Registry } from 'prom-client';
import { GuardStage, type GuardStageOptions } from '../guards/guard-stage.js';
import type { OutputFilter } from '../guards/output-filter.js';
import { PiiFilter, type PiiOptions } from './pii-filter.js';
import { StreamRedactor } from './stream-redactor.js';

export interface PiiGuardOptions extends PiiOptions, GuardStageOptions {}

/** The detections counter, registered in `registry`. */
export function piiDetectionsCounter(registry: Registry): Counter<'kind' | 'where' | 'mode'> {
  return new Counter({
    name: 'flotilla_pii_detections_total',
    help: 'Personal data values found, by kind, place (prompt or output) and mode (redact, block, log).',
    labelNames: ['kind', 'where', 'mode'],
    registers: [registry],
  });
}

/** A StreamRedactor as a guard's OutputFilter. */
export function piiOutputFilter(filter: PiiFilter): OutputFilter {
  const r = new StreamRedactor(filter);
  return {
    push: async (delta) => r.push(delta),
    end: async () => r.end(),
    get blocked() {
      return r.blocked;
    },
  };
}

export class PiiGuard extends GuardStage {
  readonly #registry = new Registry();
  readonly #filter: PiiFilter;

  constructor(downstream: DeploymentHandle, options: PiiGuardOptions = {}) {
    super(downstream, options);
    const detections = piiDetectionsCounter(this.#registry);
    this.#filter = new PiiFilter(options, (kind, where, n, mode) => detections.inc({ kind, where, mode }, n));
  }

  protected async checkPrompt(text: string, param: string): Promise<string> {
    return this.#filter.checkPrompt(text, param);
  }

  protected outputFilter(): OutputFilter | null {
    return this.#filter.options.outputs ? piiOutputFilter(this.#filter) : null;
  }

  /** Detections for a /metrics scrape (prom-client JSON, as every replica's collectMetrics). */
  async collectMetrics(): Promise<unknown[]> {
    return this.#registry.getMetricsAsJSON();
  }
}
