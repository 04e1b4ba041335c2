/**
 * The dashboard end to end: a real serve instance (threads, routers, the HTTP proxy), the page at
 * /-/dashboard in headless Chromium (Debian's, driven by playwright-core), load through the proxy, and
 * a plot that changes. Saves test-results/dashboard.png. Skips, saying why, where Chromium is absent.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { app as dashApp } from '../fixtures/apps/dash-app.js';
import { eventually, serveForTest, type Served } from '../helpers/ingress.js';
import { repoRoot } from '../helpers/models.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(chromiumPath);
if (!haveChromium)
  console.warn(
    `[dashboard test] skipped: no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH).`,
  );
const describeBrowser = haveChromium ? describe : describe.skip;
const screenshot = path.join(repoRoot, 'test-results', 'dashboard.png');

/**
 * Flags this sandbox needs: no GPU, no sandbox as root, and no background calls to a closed network.
 * (playwright adds --headless and a fresh temporary profile itself.)
 */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

describeBrowser('dashboard in headless Chromium', () => {
  let served: Served;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    served = await serveForTest([{ name: 'dash', routePrefix: '/', app: dashApp }], { grpc: false });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await served?.close();
  });

  it('serves the page as static assets, and the timeseries as JSON', async () => {
    const res = await fetch(`${served.url}/-/dashboard`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    expect(await (await fetch(`${served.url}/-/dashboard/charts.js`)).text()).toContain('function drawChart');
    const ts = await (await fetch(`${served.url}/-/timeseries`)).json();
    expect(ts.intervalMs).toBe(1000);
    expect(ts.samples.length).toBeGreaterThan(0);
    expect(Object.keys(ts.samples.at(-1).deployments).sort()).toEqual(['dash/DashFront', 'dash/DashWorker']);
  });

  it('shows the running deployments and their replicas, and a plot changes under load', async () => {
    await page.goto(`${served.url}/-/dashboard`);
    const front = page.locator('[data-deployment="dash/DashFront"]');
    await front.waitFor({ timeout: 15_000 });
    expect(await front.textContent()).toContain('HEALTHY');
    expect(await front.locator('[data-replica]').count()).toBe(2);
    expect(await page.locator('[data-deployment="dash/DashWorker"]').textContent()).toContain('RUNNING');

    const latency = '[data-charts="dash/DashWorker"] [data-chart="latency"] path[data-series="p50"]';
    const requests = '[data-charts="dash/DashWorker"] [data-chart="requests"] path[data-series="requests"]';
    await page.locator(latency).waitFor({ state: 'attached', timeout: 15_000 });
    // No call has finished yet: the latency plot has nothing to draw.
    expect(await page.getAttribute(latency, 'd')).toBe('');
    const requestsBefore = await page.getAttribute(requests, 'd');

    await runLoad(served.url, 3000);
    await eventually(
      async () => ((await page.getAttribute(latency, 'd')) ?? '').startsWith('M'),
      15_000,
      'the latency plot to draw',
    );
    expect(await page.getAttribute(requests, 'd')).not.toBe(requestsBefore);
    const points = Number(
      await page.getAttribute('[data-charts="dash/DashWorker"] [data-chart="requests"]', 'data-points'),
    );
    expect(points).toBeGreaterThan(2);
    // LLM panels are there, and say plainly that this deployment reports no LLM metrics.
    expect(await page.locator('[data-charts="dash/DashWorker"] [data-chart="kv"]').textContent()).toContain(
      'no LLM metrics',
    );

    mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(existsSync(screenshot)).toBe(true);
    // The bound covers the waits above (navigation 30 s, three 15 s waits, the load): 60 s, less than
    // their sum, cut one CI run short on a busy 2-core machine where it passes alone in 4 s.
  }, 150_000);
});

/**
 * Keeps 8 requests in flight through the proxy for `ms`; every one must succeed. (Two replicas of
 * DashFront share DashWorker's slots, so some calls are refused "full" and retried: that path once left a
 * call queued until the proxy's deadline answered 408 — the router race test/unit/router.test.ts pins.)
 */
async function runLoad(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  const statuses: number[] = [];
  const worker = async () => {
    while (Date.now() < end) {
      const res = await fetch(`${url}/work`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '[15]',
      });
      statuses.push(res.status);
      await res.text();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
}
