/** SocketChannel over a real local socket: frames both ways once the token checks out, nothing before or without it. */
import { describe, expect, it } from 'vitest';
import { listenForLinks, SocketChannel } from '../../packages/core/src/actor/socket-channel.js';
import type { ProtocolMessage } from '../../packages/core/src/actor/protocol.js';

const closed = (ch: SocketChannel) => new Promise<string>((r) => ch.onClose(r));

describe('SocketChannel', () => {
  it('delivers messages both ways after the token, in order', async () => {
    const accepted: ProtocolMessage[] = [];
    let server: SocketChannel | undefined;
    const listener = await listenForLinks('test link', (ch) => {
      server = ch;
      ch.onMessage((m) => {
        accepted.push(m);
        ch.send({ type: 'result', id: (m as { id: number }).id, value: { echo: m } });
      });
    });
    try {
      const client = SocketChannel.connect(listener.address, listener.token, 'client');
      const answers: ProtocolMessage[] = [];
      client.onMessage((m) => answers.push(m));
      for (let id = 1; id <= 3; id++) client.send({ type: 'cancel', id });
      while (answers.length < 3) await new Promise((r) => setTimeout(r, 10));
      expect(accepted.map((m) => (m as { id: number }).id)).toEqual([1, 2, 3]);
      expect(answers[2]).toEqual({ type: 'result', id: 3, value: { echo: { type: 'cancel', id: 3 } } });
      const gone = closed(server!);
      client.shutdown('done');
      expect(await gone).toMatch(/connection closed/);
    } finally {
      listener.close();
    }
  });

  it('drops a connection with the wrong token before delivering anything', async () => {
    const delivered: ProtocolMessage[] = [];
    const reasons: Promise<string>[] = [];
    const listener = await listenForLinks('test link', (ch) => {
      ch.onMessage((m) => delivered.push(m));
      reasons.push(closed(ch));
    });
    try {
      const wrong = 'ab'.repeat(32);
      const client = SocketChannel.connect(listener.address, wrong, 'client');
      client.send({ type: 'cancel', id: 1 });
      expect(await closed(client)).toMatch(/connection closed|ECONNRESET|EPIPE/);
      while (reasons.length === 0) await new Promise((r) => setTimeout(r, 10));
      expect(await reasons[0]).toMatch(/bad token/);
      expect(delivered).toEqual([]);
    } finally {
      listener.close();
    }
  });

  it('carries a 24 MiB frame between small ones intact, in order', async () => {
    const got: ProtocolMessage[] = [];
    const listener = await listenForLinks('test link', (ch) => ch.onMessage((m) => got.push(m)));
    try {
      const client = SocketChannel.connect(listener.address, listener.token, 'client');
      const big = new Uint8Array(24 << 20);
      for (let i = 0; i < big.length; i += 4096) big[i] = (i >> 12) & 0xff;
      client.send({ type: 'cancel', id: 1 });
      client.send({ type: 'result', id: 2, value: big });
      client.send({ type: 'cancel', id: 3 });
      while (got.length < 3) await new Promise((r) => setTimeout(r, 10));
      expect(got.map((m) => (m as { id: number }).id)).toEqual([1, 2, 3]);
      const v = (got[1] as { value: Uint8Array }).value;
      expect(v.length).toBe(big.length);
      expect(Buffer.compare(Buffer.from(v.buffer, v.byteOffset, v.length), Buffer.from(big))).toBe(0);
      client.shutdown('done');
    } finally {
      listener.close();
    }
  });
});
