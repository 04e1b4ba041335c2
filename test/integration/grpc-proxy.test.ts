/**
 * The gRPC proxy (protos/serve.proto) in front of the real runtime, through a real @grpc/grpc-js client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { grpcServicesOf } from '../../packages/core/src/ingress/grpc-services.js';
import { app, IngressFront } from '../fixtures/apps/ingress-app.js';
import { eventually, serveForTest, type Served, serveClient } from '../helpers/ingress.js';

let served: Served;
let client: any;
let echo: any;

beforeAll(async () => {
  served = await serveForTest([{ name: 'main', routePrefix: '/', app }], {
    http: false,
    grpcServices: grpcServicesOf('main', app),
  });
  client = serveClient(served.grpcAddress);
  const echoPkg = grpc.loadPackageDefinition(
    protoLoader.loadSync(IngressFront.grpcServices[0]!.protoPath, { keepCase: true }),
  ) as any;
  echo = new echoPkg.test.echo.Echo(served.grpcAddress, grpc.credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  echo?.close();
  await served?.close();
});

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const unary = (req: object, options: grpc.CallOptions = {}) =>
  new Promise<any>((resolve, reject) =>
    client.Call(req, new grpc.Metadata(), options, (err: grpc.ServiceError | null, res: any) =>
      err ? reject(err) : resolve(res),
    ),
  );
const collect = (stream: grpc.ClientReadableStream<any>) =>
  new Promise<unknown[]>((resolve, reject) => {
    const items: unknown[] = [];
    stream.on('data', (d: { payload: Buffer }) => items.push(JSON.parse(d.payload.toString())));
    stream.on('end', () => resolve(items));
    stream.on('error', reject);
  });

describe('gRPC proxy (real runtime)', () => {
  it('calls a method (unary) and echoes the request id', async () => {
    const res = await unary({ application: 'main', method: 'add', payload: json([40, 2]), request_id: 'grpc-1' });
    expect(JSON.parse(res.payload.toString())).toBe(42);
    expect(res.request_id).toBe('grpc-1');
  });

  it('streams a generator across a thread and a process replica', async () => {
    const items = await collect(client.Stream({ application: 'main', method: 'ticks', payload: json([3, 5]) }));
    expect(items.map((t: any) => t.tick)).toEqual([0, 1, 2]);
  });

  it('reaches a non-ingress deployment by name', async () => {
    const items = await collect(
      client.Stream({ application: 'main', deployment: 'IngressTicker', method: 'ticks', payload: json([2, 1]) }),
    );
    expect(items).toHaveLength(2);
  });

  it('maps errors to gRPC status codes', async () => {
    await expect(unary({ application: 'main', method: 'nosuch' })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
    await expect(unary({ application: 'nope', method: 'add' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(unary({ application: 'main', method: 'add', payload: Buffer.from('[1,') })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
    await expect(unary({ application: 'main', method: 'fail', payload: json('boom') })).rejects.toMatchObject({
      code: grpc.status.UNKNOWN,
      details: expect.stringContaining('boom'),
    });
    await expect(
      unary({ application: 'main', method: 'sleep', payload: json(5000) }, { deadline: Date.now() + 300 }),
    ).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
  });

  it('cancelling the call cancels the replica generators', async () => {
    const before = JSON.parse((await unary({ application: 'main', method: 'closedCounts' })).payload.toString());
    const stream = client.Stream({ application: 'main', method: 'ticks', payload: json([1000, 20]) });
    stream.on('error', () => {});
    await new Promise((resolve) => stream.once('data', resolve));
    stream.cancel();
    await eventually(
      async () => {
        const now = JSON.parse((await unary({ application: 'main', method: 'closedCounts' })).payload.toString());
        return now.front > before.front && now.ticker > before.ticker;
      },
      10_000,
      'both generators to be closed',
    );
  });

  it('serves the proto service a deployment declares (static grpcServices)', async () => {
    const said = await new Promise<any>((resolve, reject) =>
      echo.Say({ text: 'ahoy' }, (e: any, r: any) => (e ? reject(e) : resolve(r))),
    );
    expect(said.text).toBe('AHOY');
    const many = await new Promise<string[]>((resolve, reject) => {
      const out: string[] = [];
      const stream = echo.SayMany({ text: 'x', times: 3 });
      stream.on('data', (d: { text: string }) => out.push(d.text));
      stream.on('end', () => resolve(out));
      stream.on('error', reject);
    });
    expect(many).toEqual(['x#0', 'x#1', 'x#2']);
  });

  it('lists applications and answers health', async () => {
    const list = await new Promise<any>((resolve, reject) =>
      client.ListApplications({}, (e: any, r: any) => (e ? reject(e) : resolve(r))),
    );
    expect(list.applications[0]).toMatchObject({ name: 'main', ingress: 'IngressFront' });
    expect(list.applications[0].methods.ticks).toBe('stream');
    const health = await new Promise<any>((resolve, reject) =>
      client.Healthz({}, (e: any, r: any) => (e ? reject(e) : resolve(r))),
    );
    expect(health.status).toBe('SERVING');
  });
});
