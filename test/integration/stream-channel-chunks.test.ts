/**
 * A remote replica's large values over a real gRPC ActorChannel stream: messages above 1 MiB are cut
 * into frames of at most FRAME_CHUNK_BYTES (under grpc-js's 4 MiB default receive limit) and joined on
 * the other side, in order with small messages around them.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ProtocolMessage } from '../../packages/core/src/actor/protocol.js';
import { grpcChannelPair } from '../helpers/grpc-actor-stream.js';
import { pattern } from '../fixtures/apps/kv-transfer.js';

const digest = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('StreamChannel over gRPC', () => {
  it('carries a 24 MiB byte array intact, between small messages, both ways', async () => {
    const pair = await grpcChannelPair();
    try {
      const got: ProtocolMessage[] = [];
      pair.server.onMessage((m) => {
        got.push(m);
        if (m.type === 'result') pair.server.send({ type: 'result', id: 99, value: (m as { value: unknown }).value });
      });
      // A frame over gRPC's limit ends the stream: fail at once instead of waiting for the echo.
      const lost = new Promise<never>((_, reject) => {
        pair.client.onClose((why) => reject(new Error(`client closed: ${why}`)));
        pair.server.onClose((why) => reject(new Error(`server closed: ${why}`)));
      });
      const back = Promise.race([new Promise<ProtocolMessage>((r) => pair.client.onMessage(r)), lost]);
      const big = pattern(24 * 1024 * 1024 + 5, 17);
      pair.client.send({ type: 'cancel', id: 1 });
      pair.client.send({ type: 'result', id: 2, value: { kv: big } });
      pair.client.send({ type: 'cancel', id: 3 });
      const echoed = (await back) as { value: { kv: Uint8Array } };
      while (got.length < 3) await new Promise((r) => setTimeout(r, 5));
      expect(got.map((m) => (m as { id: number }).id)).toEqual([1, 2, 3]);
      const arrived = (got[1] as { value: { kv: Uint8Array } }).value.kv;
      expect(arrived.byteLength).toBe(big.byteLength);
      expect(digest(arrived)).toBe(digest(big));
      expect(digest(echoed.value.kv)).toBe(digest(big));
      expect(pair.client.closed || pair.server.closed).toBe(false);
    } finally {
      await pair.close();
    }
  });
});
