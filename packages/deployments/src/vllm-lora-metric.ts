/**
 * vLLM's `vllm:lora_requests_info` gauge (vllm/v1/metrics/loggers.py): one series whose labels say which
 * LoRA adapters have requests running and waiting now (`running_lora_adapters`, `waiting_lora_adapters`:
 * names joined by commas, empty for none) and the engine's adapter slots (`max_lora`); its value is the
 * scrape time in Unix seconds, as vLLM's set_to_current_time(). Registered when the engine has LoRA slots.
 *
 * Running: the adapters of the scheduler's running sequences. Waiting: those of its waiting sequences and
 * of requests waiting for a slot (every slot pinned; lora/adapter-manager.ts), which vLLM's scheduler
 * also counts as waiting.
 */
import type { LLMEngine } from '@flotilla/engine';
import { Gauge, type Registry } from 'prom-client';

export const LORA_REQUESTS_INFO = 'vllm:lora_requests_info';

export interface LoraRequests {
  running: string[];
  waiting: string[];
}

/** The adapters with running and waiting requests on `engine` now, each once, in first-seen order. */
export function loraRequests(engine: Pick<LLMEngine, 'adapters' | 'scheduler'>): LoraRequests {
  const adapters = engine.adapters;
  const names = (seqs: ReadonlyArray<{ loraSlot: number }>, more: string[] = []): string[] => {
    const out = new Set<string>();
    for (const s of seqs) {
      const name = s.loraSlot >= 0 ? adapters?.nameInSlot(s.loraSlot) : null;
      if (name) out.add(name);
    }
    for (const m of more) out.add(m);
    return [...out];
  };
  return {
    running: names(engine.scheduler.running),
    waiting: names(engine.scheduler.waiting, adapters?.waitingForSlot() ?? []),
  };
}

/** Registers the gauge into `registry`; `read` gives the current adapters (undefined before an engine is attached). */
export function registerLoraRequestsInfo(
  registry: Registry,
  maxLora: number,
  read: () => LoraRequests | undefined,
): void {
  new Gauge({
    name: LORA_REQUESTS_INFO,
    help: 'Running stats on lora requests.',
    labelNames: ['running_lora_adapters', 'waiting_lora_adapters', 'max_lora'],
    registers: [registry],
    collect() {
      const now = read();
      this.reset(); // one series: the adapters of this scrape, not every set seen before
      if (!now) return;
      this.set(
        {
          running_lora_adapters: now.running.join(','),
          waiting_lora_adapters: now.waiting.join(','),
          max_lora: String(maxLora),
        },
        Date.now() / 1000,
      );
    },
  });
}
