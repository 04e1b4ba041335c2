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
  target = new InMemoryTarget([
    {
      name: 'echo',
      routePrefix: '/echo',
      impl: {
        add: (a: number, b: number) => a + b,
        say: (req: { text: string }) => ({ text: req.text.toUpperCase() }),
        async *sayMany(req: { text: string; times: number }) {
          for (let i = 0; i < req.times; i++) yield { text: `${req.text}${i}` };
        },
        async *count(n: number) {
          for (let i = 0; i < n; i++) yield i;
        },
        async *forever() {
          for (let i = 0; ; i++) {
            yield i;
            await sleep(5);
          }
        },
      },
    },
  ]);
  proxy = await GrpcProxy.start(target, {
    port: 0,
    services: [
      {
        protoPath: path.join(here, '../../fixtures/protos/ingress-echo.proto'),
        service: 'test.echo.Echo',
        app: 'echo',
      },
    ],
  });
  const serve = grpc.loadPackageDefinition(
    protoLoader.loadSync(SERVE_PROTO_PATH, { keepCase: true, defaults: true }),
  ) as any;
  client = new serve.flotilla.serve.v1.Serve(proxy.address, grpc.credentials.createInsecure());
  const echoPkg = grpc.loadPackageDefinition(
    protoLoader.loadSync(path.join(here, '../../fixtures/protos/ingress-echo.proto'), { keepCase: true }),
  ) as any;
  echo = new echoPkg.test.echo.Echo(proxy.address, grpc.credentials.createInsecure());
});
afterAll(async () => {
  client?.close();
  echo?.close();
  await proxy.close();
});

const call = (req: object, md = new grpc.Metadata()) =>
  new Promise<any>((resolve, reject) =>
    client.Call(req, md, (err: any, res: any) => (err ? reject(err) : resolve(res))),
  );
const collect = (stream: any) =>
  new Promise<any[]>((resolve, reject) => {
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
    await expect(call({ application: 'echo', method: 'add', payload: Buffer.from('{bad') })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
    target.maxOngoing = 0;
    try {
      await expect(call({ application: 'echo', method: 'add', payload: json([1, 2]) })).rejects.toMatchObject({
        code: grpc.status.RESOURCE_EXHAUSTED,
      });
    } finally {
      target.maxOngoing = Infinity;
    }
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
    const res = await new Promise<any>((resolve, reject) =>
      echo.Say({ text: 'hi' }, (e: any, r: any) => (e ? reject(e) : resolve(r))),
    );
    expect(res.text).toBe('HI');
    const many = await new Promise<any[]>((resolve, reject) => {
      const out: any[] = [];
      const s = echo.SayMany({ text: 'x', times: 2 });
      s.on('data', (d: any) => out.push(d.text));
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    expect(many).toEqual(['x0', 'x1']);
  });
});

describe('GrpcProxy: call metadata for deployment-defined services', () => {
  const protoPath = path.join(here, '../../fixtures/protos/ingress-echo.proto');
  const describeArgs = (req: { text: string }, info?: { metadata: Record<string, string>; peer: string }) => ({
    text: JSON.stringify({ req: req.text, info: info ?? null }),
  });
  async function start(passCallInfo: boolean) {
    const t = new InMemoryTarget([
      {
        name: 'echo',
        routePrefix: '/echo',
        impl: {
          say: (req: { text: string }, ...rest: unknown[]) => describeArgs(req, rest[0] as never),
          async *sayMany(req: { text: string }, ...rest: unknown[]) {
            yield describeArgs(req, rest[0] as never);
          },
        },
      },
    ]);
    const p = await GrpcProxy.start(t, {
      port: 0,
      services: [{ protoPath, service: 'test.echo.Echo', app: 'echo', passCallInfo }],
    });
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true })) as any;
    return { proxy: p, client: new pkg.test.echo.Echo(p.address, grpc.credentials.createInsecure()) };
  }
  const metadata = () => {
    const md = new grpc.Metadata();
    md.set('authorization', 'Bearer sk-123');
    md.add('x-tag', 'a');
    md.add('x-tag', 'b');
    md.set('trace-bin', Buffer.from([1, 2]));
    return md;
  };

  it('passes { metadata, peer } as the second argument with passCallInfo, unary and streaming', async () => {
    const { proxy: p, client: c } = await start(true);
    try {
      const reply = await new Promise<any>((resolve, reject) =>
        c.Say({ text: 'hi' }, metadata(), (e: any, r: any) => (e ? reject(e) : resolve(r))),
      );
      const got = JSON.parse(reply.text);
      expect(got.req).toBe('hi');
      expect(got.info.metadata).toMatchObject({ authorization: 'Bearer sk-123', 'x-tag': 'a, b' });
      expect(got.info.metadata['trace-bin']).toBeUndefined();
      expect(got.info.peer).toMatch(/^127\.0\.0\.1:\d+$/);
      const streamed = await new Promise<any[]>((resolve, reject) => {
        const out: any[] = [];
        const s = c.SayMany({ text: 'yo' }, metadata());
        s.on('data', (d: any) => out.push(JSON.parse(d.text)));
        s.on('end', () => resolve(out));
        s.on('error', reject);
      });
      expect(streamed[0].info.metadata.authorization).toBe('Bearer sk-123');
    } finally {
      c.close();
      await p.close();
    }
  });

  it('passes the request alone by default', async () => {
    const { proxy: p, client: c } = await start(false);
    try {
      const reply = await new Promise<any>((resolve, reject) =>
        c.Say({ text: 'hi' }, metadata(), (e: any, r: any) => (e ? reject(e) : resolve(r))),
      );
      expect(JSON.parse(reply.text)).toEqual({ req: 'hi', info: null });
    } finally {
      c.close();
      await p.close();
    }
  });
});
