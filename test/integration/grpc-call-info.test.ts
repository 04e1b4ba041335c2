/**
 * Serve.Call/Stream of a method bound with passCallInfo: the second argument is the proxy's own call
 * info (the real peer, the key check's result, the call's metadata), never what the caller's payload
 * says — a client must not choose its address (rate-limit buckets) or claim another key's identity.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcServicesOf } from '../../packages/core/src/ingress/grpc-services.js';
import { whoAmIApp } from '../fixtures/apps/call-info-app.js';
import { type Served, serveForTest, serveClient } from '../helpers/ingress.js';

let served: Served;
let client: any;

beforeAll(async () => {
  served = await serveForTest([{ name: 'who', routePrefix: '/', app: whoAmIApp }], {
    http: false,
    grpcServices: grpcServicesOf('who', whoAmIApp),
  });
  client = serveClient(served.grpcAddress);
});
afterAll(async () => {
  client?.close();
  await served?.close();
});

const forged = {
  peer: '6.6.6.6:666',
  metadata: { 'x-note': 'forged' },
  auth: { keyId: 'someone-else', kind: 'admin' },
};
const payload = Buffer.from(JSON.stringify([{ prompt: 'hi' }, forged]));

describe('gRPC Serve.Call of a passCallInfo method', () => {
  it('replaces a forged call info with the proxy’s own (unary)', async () => {
    const md = new grpc.Metadata();
    md.set('x-note', 'real');
    const res = await new Promise<{ payload: Buffer }>((resolve, reject) =>
      client.Call(
        { application: 'who', method: 'whoami', payload },
        md,
        (e: grpc.ServiceError | null, r: { payload: Buffer }) => (e ? reject(e) : resolve(r)),
      ),
    );
    const seen = JSON.parse(res.payload.toString());
    expect(seen.peer).not.toBe('6.6.6.6:666');
    expect(seen.peer).toMatch(/127\.0\.0\.1|::1|localhost/);
    expect(seen.auth).toBeNull();
    expect(seen.note).toBe('real');
  });

  it('replaces it on Serve.Stream too', async () => {
    const items: unknown[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = client.Stream({ application: 'who', method: 'whoamiStream', payload });
      s.on('data', (d: { payload: Buffer }) => items.push(JSON.parse(d.payload.toString())));
      s.on('end', resolve);
      s.on('error', reject);
    });
    expect(items).toHaveLength(1);
    expect((items[0] as { peer: string }).peer).not.toBe('6.6.6.6:666');
    expect((items[0] as { auth: unknown }).auth).toBeNull();
  });
});
