/**
 * TLS on both proxies and the keys an application declares, through a real `serve run` child on stories260K
 * (`examples/llm-server.ts` with api_keys=, admin_keys=, metrics_keys= and --tls-cert/--tls-key), with a CA
 * the test makes with openssl: the official `openai` client over https (in a child process trusting the CA
 * through NODE_EXTRA_CA_CERTS), grpc-js with credentials.createSsl(ca), the monitoring routes guarded by
 * the application's keys, model paths for admin keys only, and plaintext or untrusting clients refused.
 */
import { beforeAll, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { cliProcesses } from '../helpers/cli-processes.js';
import { describeWithModels, models, repoRoot } from '../helpers/models.js';
import { eventually } from '../helpers/ingress.js';
import { makeTestCa, type TestCa } from '../helpers/test-ca.js';
import { SERVE_PROTO_PATH } from '../../packages/core/src/ingress/grpc-proxy.js';

const API = 'tls-api-key-0001';
const ADMIN = 'tls-admin-key-001';
const METRICS = 'tls-metrics-key-01';
const { serve } = cliProcesses();

let ca: TestCa;
let url = '';
let grpcAddress = '';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request over https trusting `trust` (default: the test CA). */
function request(path_: string, options: { key?: string; method?: string; trust?: Buffer | null } = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const req = https.request(
      `${url}${path_}`,
      {
        method: options.method ?? 'GET',
        servername: 'localhost',
        headers: options.key ? { authorization: `Bearer ${options.key}` } : {},
        ...(options.trust === null ? {} : { ca: options.trust ?? ca.ca }),
      },
      (res) => {
        let body = '';
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describeWithModels('TLS and application keys through serve run (stories260K)', () => {
  beforeAll(async () => {
    ca = makeTestCa();
    const run = serve([
      'run',
      'examples/llm-server.ts:app',
      `model=${models.stories260K}`,
      `api_keys=${API}`,
      `admin_keys=${ADMIN}`,
      `metrics_keys=${METRICS}`,
      '--tls-cert',
      ca.certFile,
      '--tls-key',
      ca.keyFile,
      '--port',
      '0',
      '--grpc-port',
      '0',
    ]);
    await eventually(
      () => /https:\/\/127\.0\.0\.1:\d+\/-\/healthz/.test(run.out()) || run.child.exitCode !== null,
      90_000,
      'the banner',
    );
    url = /(https:\/\/127\.0\.0\.1:\d+)\/-\/healthz/.exec(run.out())?.[1] ?? '';
    grpcAddress = /gRPC\s+(\S+:\d+)/.exec(run.out())?.[1] ?? '';
    expect(url, run.out()).not.toBe('');
    await eventually(
      async () => (await request('/health').catch(() => ({ status: 0 }))).status === 200,
      90_000,
      'the model to load',
    );
  }, 180_000);

  it('serves the official openai client over https, trusting the test CA', async () => {
    const run = (key: string) =>
      new Promise<any>((resolve, reject) =>
        execFile(
          process.execPath,
          [path.join(repoRoot, 'test/fixtures/scripts/openai-over-https.mjs')],
          {
            cwd: repoRoot,
            env: { ...process.env, NODE_EXTRA_CA_CERTS: ca.caFile, BASE_URL: `${url}/v1`, API_KEY: key },
          },
          (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout))),
        ),
      );
    const asUser = await run(API);
    expect(asUser.error).toBeUndefined();
    expect(asUser.completionTokens).toBe(5);
    expect(asUser.streamedChunks).toBeGreaterThan(0);
    // The model's file path is for admins: users see the served name.
    expect(asUser.models).toEqual([{ id: 'stories260K', root: 'stories260K' }]);
    const asAdmin = await run(ADMIN);
    expect(asAdmin.models[0].root).toBe(models.stories260K);
    const denied = await run('not-a-key-00000');
    expect(denied.error).toMatchObject({ name: 'AuthenticationError', status: 401, code: 'invalid_api_key' });
  }, 120_000);

  it("guards the proxy's routes with the keys the application declares", async () => {
    expect((await request('/-/healthz')).status).toBe(200);
    expect((await request('/metrics')).status).toBe(401);
    expect((await request('/metrics', { key: API })).status).toBe(403);
    const scraped = await request('/metrics', { key: METRICS });
    expect(scraped.status).toBe(200);
    expect(scraped.body).toContain('flotilla_');
    expect((await request('/-/status', { key: ADMIN })).status).toBe(200);
    expect((await request('/-/shutdown', { method: 'POST', key: METRICS })).status).toBe(403);
  });

  it('refuses clients that do not trust the CA, and plaintext HTTP', async () => {
    const untrusting = await request('/-/healthz', { trust: null }).catch((e: NodeJS.ErrnoException) => e);
    expect((untrusting as NodeJS.ErrnoException).code).toMatch(/SELF_SIGNED|UNABLE_TO_GET_ISSUER|UNABLE_TO_VERIFY/);
    const plain = await fetch(`${url.replace('https:', 'http:')}/-/healthz`).catch((e: Error) => e);
    expect(plain instanceof Error || (plain as Response).status === 400).toBe(true);
  });

  it('serves gRPC over TLS to grpc-js with createSsl(ca), with keys in metadata', async () => {
    const llmPkg = grpc.loadPackageDefinition(
      protoLoader.loadSync(path.join(repoRoot, 'protos/llm.proto'), { keepCase: true, longs: Number, defaults: true }),
    ) as any;
    const servePkg = grpc.loadPackageDefinition(
      protoLoader.loadSync(SERVE_PROTO_PATH, { keepCase: true, defaults: true }),
    ) as any;
    const tls = grpc.credentials.createSsl(ca.ca);
    const llm = new llmPkg.flotilla.llm.v1.Llm(grpcAddress, tls);
    const admin = new servePkg.flotilla.serve.v1.Serve(grpcAddress, tls);
    const plaintext = new servePkg.flotilla.serve.v1.Serve(grpcAddress, grpc.credentials.createInsecure());
    const md = (key: string) => {
      const m = new grpc.Metadata();
      m.set('authorization', `Bearer ${key}`);
      return m;
    };
    const unary = (client: any, method: string, req: object, metadata: grpc.Metadata) =>
      new Promise<any>((resolve, reject) =>
        client[method](req, metadata, { deadline: Date.now() + 20_000 }, (err: grpc.ServiceError | null, res: any) =>
          err ? reject(err) : resolve(res),
        ),
      );
    try {
      const reply = await unary(
        llm,
        'Generate',
        { prompt: 'Once upon a time', max_tokens: 4, temperature: 0 },
        md(API),
      );
      expect(reply.usage.completion_tokens).toBe(4);
      // llm.proto's api_key field is a key too.
      const byField = await unary(
        llm,
        'Generate',
        { api_key: API, prompt: 'Lily', max_tokens: 2 },
        new grpc.Metadata(),
      );
      expect(byField.usage.completion_tokens).toBe(2);
      const apps = await unary(admin, 'ListApplications', {}, md(METRICS));
      expect(apps.applications.length).toBe(1);
      const denied = await unary(admin, 'ListApplications', {}, md(API)).catch((e: grpc.ServiceError) => e);
      expect((denied as grpc.ServiceError).code).toBe(grpc.status.PERMISSION_DENIED);
      const info = await unary(admin, 'Call', { method: 'modelInfo', payload: Buffer.from('[]') }, md(ADMIN));
      expect(JSON.parse(info.payload.toString()).path).toBe('stories260K');
      const refused = await unary(plaintext, 'Healthz', {}, new grpc.Metadata()).catch((e: grpc.ServiceError) => e);
      expect((refused as grpc.ServiceError).code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      llm.close();
      admin.close();
      plaintext.close();
    }
  }, 60_000);
});
