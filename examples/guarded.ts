/**
 * A guarded LLM behind the OpenAI and TGI APIs (and gRPC llm.proto): a PII guard in front of a
 * content-safety guard in front of the model. Prompts lose their personal data (or are refused), then a
 * classifier — LlmJudge, a small model asked "harmful? yes/no" — judges prompts and streamed outputs;
 * unsafe ones are refused (400 `content_filter`) or cut (finish_reason 'content_filter').
 *
 *   serve run examples/guarded.ts:app
 *   serve run examples/guarded.ts:app model=PATH judge=PATH threshold=0.8 safety=block|redact|log pii=redact|block|log
 *     safety_on=prompts,outputs window=200 (output characters per judgement)
 *
 * Defaults: models/flotilla-stories/target serves, its draft judges (a story model knows nothing of
 * harm: the judge shows the mechanics; point `judge=` at a real classifier model and calibrate
 * `threshold` for real use). Try:
 *   curl -s localhost:8000/v1/completions -H 'content-type: application/json' \
 *     -d '{"prompt":"Write to ana@example.com: once upon a time","max_tokens":24}'
 *   curl -s localhost:8000/metrics | grep -E 'flotilla_(pii|safety)_'
 */
import { deployment } from '@flotilla/core';
import { LLMServer, LlmJudge, PiiGuard, SafetyGuard, type PiiMode, type SafetyMode } from '@flotilla/deployments';
import { llmOptions } from './llm-server.js';
import { defaultPair } from './speculative.js';

@deployment({ maxOngoingRequests: 256, healthCheckPeriodS: 5 })
export class GuardedModel extends LLMServer {}

@deployment({ maxOngoingRequests: 64 })
export class Judge extends LlmJudge {}

@deployment({ maxOngoingRequests: 256 })
export class Safety extends SafetyGuard {}

@deployment({ maxOngoingRequests: 256 })
export class Pii extends PiiGuard {}

export function app(args: Record<string, string | undefined> = {}) {
  const pair = defaultPair();
  const { judge, threshold, safety, pii, window, safety_on, ...rest } = args;
  const on = (safety_on ?? 'prompts,outputs').split(',');
  const model = GuardedModel.bind(
    llmOptions({
      ...rest,
      model: rest.model ?? pair.target,
      // The shipped model's folder is called 'target'; clients should see the model's own name.
      ...(!rest.model && !rest.served_name && pair.target.endsWith('target')
        ? { served_name: 'flotilla-stories' }
        : {}),
      ...(pair.tokenizer && !rest.tokenizer ? { tokenizer: pair.tokenizer } : {}),
    }),
  );
  const classifier = Judge.bind({
    model: judge ?? pair.draft,
    ...(pair.tokenizer ? { tokenizer: pair.tokenizer } : {}),
  });
  const safe = Safety.bind(model, classifier, {
    threshold: threshold !== undefined ? Number(threshold) : 0.9,
    mode: (safety ?? 'block') as SafetyMode,
    prompts: on.includes('prompts'),
    outputs: on.includes('outputs'),
    ...(window ? { windowChars: Number(window) } : {}),
  });
  return Pii.bind(safe, { mode: (pii ?? 'redact') as PiiMode });
}
