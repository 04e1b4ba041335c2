/**
 * SpeculativePipeline's own metrics, in the replica's prom-client registry (collectMetrics(), as
 * LLMServer and HybridRouter): rounds, the rounds served by a draft call made ahead, and where the
 * rounds' time went (RoundTiming: draft, verify, crossings), so a dashboard shows what messaging
 * between the actors costs against the models' own work.
 */
import { Counter, Registry } from 'prom-client';
import type { RoundTiming } from './spec-session.js';

export class SpecPipelineMetrics {
  readonly registry = new Registry();
  private readonly rounds: Counter;
  private readonly ahead: Counter;
  private readonly seconds: Counter<'part'>;

  constructor() {
    const registers = [this.registry];
    this.rounds = new Counter({
      name: 'flotilla_spec_pipeline_rounds_total',
      help: 'Speculative rounds (a draft proposal and its verification) of the pipeline.',
      registers,
    });
    this.ahead = new Counter({
      name: 'flotilla_spec_pipeline_ahead_rounds_total',
      help: 'Rounds whose proposals came from a draft call made during the previous verification (lookahead).',
      registers,
    });
    this.seconds = new Counter({
      name: 'flotilla_spec_pipeline_round_seconds_total',
      help: "Rounds' wall time by part: draft (inside the draft replica, or waiting for a call made ahead), verify (inside the target replica), crossings (the rest: messaging both ways and the pipeline's own work).",
      labelNames: ['part'],
      registers,
    });
  }

  round(t: RoundTiming): void {
    this.rounds.inc();
    if (t.ahead) this.ahead.inc();
    this.seconds.inc({ part: 'draft' }, t.draftMs / 1000);
    this.seconds.inc({ part: 'verify' }, t.verifyMs / 1000);
    this.seconds.inc({ part: 'crossings' }, Math.max(0, t.roundMs - t.draftMs - t.verifyMs) / 1000);
  }
}
