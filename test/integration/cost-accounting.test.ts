/**
 * Cost accounting through a real server: `serve run` (a child process) of an LLMServer deployment with
 * cost prices on stories260K. A whole reply carries its cost (x-flotilla-cost-usd = its usage at the
 * token prices), every request's audit line carries costUsd, and /metrics has
 * flotilla_cost_usd_total{application,deployment} (replica-hours + the tokens the replica reported) and
 * flotilla_deployment_tokens_total, which reaches the tokens the replies reported.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PRICES } from '../fixtures/apps/cost-apps.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { describeWithModels } from '../helpers/models.js';

let server: ServeRun;

const tokenCost = (prompt: number, completion: number) =>
  (prompt * PRICES.per1kPromptTokens + completion * PRICES.per1kCompletionTokens) / 1000;

function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(' ').at(-1));
  }
  return undefined;
}

function auditLine(requestId: string): Record<string, unknown> | undefined {
  for (const line of server.output().split('\n')) {
    if (!line.includes('"audit":"llm-request"') || !line.includes(requestId)) continue;
    return JSON.parse(line.slice(line.indexOf('{'))) as Record<string, unknown>;
  }
  return undefined;
}

async function waitFor<T>(get: () => Promise<T | undefined> | T | undefined, what: string): Promise<T> {
  const end = Date.now() + 60_000;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${server.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describeWithModels('cost accounting (LLMServer with cost prices, through serve run)', () => {
  beforeAll(async () => {
    server = await serveRun(['test/fixtures/apps/cost-apps.ts:app']);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('prices each reply and request, and accrues the deployment cost on /metrics', async () => {
    const post = (body: unknown, id: string) =>
      fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': id },
        body: JSON.stringify(body),
      });
    const whole = await post({ prompt: 'Once upon a time', max_tokens: 20, temperature: 0 }, 'cost-whole');
    expect(whole.status).toBe(200);
    const body = (await whole.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
    const expected = tokenCost(body.usage.prompt_tokens, body.usage.completion_tokens);
    expect(expected).toBeGreaterThan(0);
    expect(Number(whole.headers.get('x-flotilla-cost-usd'))).toBeCloseTo(expected, 9);
    const audit = await waitFor(() => auditLine('cost-whole'), 'the audit line');
    expect(audit.costUsd).toBeCloseTo(expected, 12);

    // A stream's head leaves before its tokens are counted: its cost is in the audit line only.
    const streamed = await post(
      { prompt: 'Lily', max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } },
      'cost-stream',
    );
    expect(streamed.headers.get('x-flotilla-cost-usd')).toBeNull();
    const events = (await streamed.text()).split('\n\n').filter((e) => e.startsWith('data: {'));
    const last = JSON.parse(events.at(-1)!.slice(6)) as { usage: { prompt_tokens: number; completion_tokens: number } };
    const streamCost = tokenCost(last.usage.prompt_tokens, last.usage.completion_tokens);
    const streamAudit = await waitFor(() => auditLine('cost-stream'), 'the stream audit line');
    expect(streamAudit.costUsd).toBeCloseTo(streamCost, 12);

    // The controller reads the replica's token counters (every second) and accrues uptime.
    const prompt = body.usage.prompt_tokens + last.usage.prompt_tokens;
    const completion = body.usage.completion_tokens + last.usage.completion_tokens;
    const labels = { application: 'default', deployment: 'PricedLLM' };
    const scrape = await waitFor(async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const p = metric(text, 'flotilla_deployment_tokens_total', { ...labels, kind: 'prompt' });
      const c = metric(text, 'flotilla_deployment_tokens_total', { ...labels, kind: 'completion' });
      return p === prompt && c === completion ? text : undefined;
    }, 'the token counters on /metrics');
    const usd = metric(scrape, 'flotilla_cost_usd_total', labels);
    expect(usd).toBeDefined();
    // Tokens at their prices plus replica uptime at $1 a second (the replica has run for a while).
    expect(usd!).toBeGreaterThan(tokenCost(prompt, completion));
    const later = await waitFor(async () => {
      const v = metric(await (await fetch(`${server.url}/metrics`)).text(), 'flotilla_cost_usd_total', labels);
      return v !== undefined && v > usd! ? v : undefined;
    }, 'the cost to grow with uptime');
    expect(later).toBeGreaterThan(usd!);
  }, 120_000);
});
