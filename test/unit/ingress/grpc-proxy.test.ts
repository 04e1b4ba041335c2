import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { GrpcProxy, SERVE_PROTO_PATH } from '../../../packages/core/src/ingress/grpc-proxy.js';
import { InMemoryTarget } from './in-memory-target.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let target: InMemoryTarget;
let proxy: GrpcProxy;
let client: any;
let echo: any;

beforeAll(async () => {
  target = new InMemoryTarget([{
    name: 'echo', routePrefix: '/echo', impl: {
      add: (a: number, b: number) => a + b,
      say: (req: { text: string }) => ({ text: req.text.toUpperCase() }),
      async *sayMany(req: { text: string; times: number }) { for (let i = 0; i < req.times; i++) yield { text: `${req.text}${i}` }; },
      async *count(n: number) { for (let i = 0; i < n; i++) yield i; },
      async *forever() { for (let i = 0; ; i++) { yield i; await sleep(5); } },
    },
  }]);
  proxy = await GrpcProxy.start(target, {
    port: 0, services: [{ protoPath: path.join(here, '../../fixtures/protos/ingress-echo.proto'), service: 'test.echo.Echo', app: 'echo' }],
  });
  const serve = grpc.loadPackageDefinition(protoLoader.loadSync(SERVE_PROTO_PATH, { keepCase: true, defaults: true })) as any;
  client = new serve.flotilla.serve.v1.Serve(proxy.address, grpc.credentials.createInsecure());
  const echoPkg = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(here, '../../fixtures/protos/ingress-echo.proto'), { keepCase: true })) as any;
  echo = new echoPkg.test.echo.Echo(proxy.address, grpc.credentials.createInsecure());
});
afterAll(async () => { client?.close(); echo?.close(); await proxy.close(); });

const call = (req: object, md = new grpc.Metadata()) => new Promise<any>((resolve, reject) =>
  client.Call(req, md, (err: any, res: any) => (err ? reject(err) : resolve(res))));
const collect = (stream: any) => new Promise<any[]>((resolve, reject) => {
  const out: any[] = [];
  stream.on('data', (d: any) => out.push(JSON.parse(d.payload.toString())));
  stream.on('end', () => resolve(out));
  stream.on('error', reject);
});
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('GrpcProxy over an in-memory target', () => {
  it('calls unary methods and echoes the request id', async () => {
    const res = await call({ application: 'echo', method: 'add', payload: json([2, 5]), request_id: 'rid-1' });
    expect(JSON.parse(res.payload.toString())).toBe(7);
    expect(res.request_id).toBe('rid-1');
  });

  it('streams', async () => {
    expect(await collect(client.Stream({ application: 'echo', method: 'count', payload: json(3) }))).toEqual([0, 1, 2]);
    expect(await collect(client.Stream({ method: 'add', payload: json([1, 1]) }))).toEqual([2]);
  });

  it('maps errors to status codes', async () => {
    await expect(call({ application: 'nope', method: 'add' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(call({ application: 'echo', method: 'nope' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(call({ application: 'echo', method: 'add', payload: Buffer.from('{bad') })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    target.maxOngoing = 0;
    try {
      await expect(call({ application: 'echo', method: 'add', payload: json([1, 2]) })).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    } finally { target.maxOngoing = Infinity; }
  });

  it('cancels the generator when the client cancels', async () => {
    const stream = client.Stream({ application: 'echo', method: 'forever' });
    stream.on('error', () => {});
    await new Promise((resolve) => stream.once('data', resolve));
    stream.cancel();
    for (let i = 0; i < 100 && !target.closedStreams.includes('forever'); i++) await sleep(10);
    expect(target.closedStreams).toContain('forever');
  });

  it('serves registered proto services', async () => {
    const res = await new Promise<any>((resolve, reject) => echo.Say({ text: 'hi' }, (e: any, r: any) => (e ? reject(e) : resolve(r))));
    expect(res.text).toBe('HI');
    const many = await new Promise<any[]>((resolve, reject) => {
      const out: any[] = [];
      const s = echo.SayMany({ text: 'x', times: 2 });
      s.on('data', (d: any) => out.push(d.text)); s.on('end', () => resolve(out)); s.on('error', reject);
    });
    expect(many).toEqual(['x0', 'x1']);
  });
});
