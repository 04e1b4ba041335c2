/**
 * Two StreamChannels joined by a real gRPC ActorChannel stream (protos/cluster.proto) on localhost, with
 * grpc-js's default 4 MiB limit on a received message: the path a remote replica's messages take
 * between the head and an agent, without the rest of the cluster. For tests and bench/kv-transfer.
 */
import * as grpc from '@grpc/grpc-js';
import { type FrameStream, StreamChannel } from '../../packages/core/src/actor/stream-channel.js';
import { clusterService } from '../../packages/core/src/cluster/cluster-proto.js';

export interface GrpcChannelPair {
  /** The caller's side (as the agent's). */
  client: StreamChannel;
  /** The server's side (as the head's). */
  server: StreamChannel;
  close(): Promise<void>;
}

export async function grpcChannelPair(): Promise<GrpcChannelPair> {
  const { service, Client } = clusterService();
  const server = new grpc.Server();
  let resolveServer!: (ch: StreamChannel) => void;
  const serverSide = new Promise<StreamChannel>((r) => {
    resolveServer = r;
  });
  server.addService(service, {
    ActorChannel: (call: grpc.ServerDuplexStream<unknown, unknown>) =>
      resolveServer(new StreamChannel('server', call as unknown as FrameStream)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const stub = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as {
    ActorChannel(): FrameStream;
    close(): void;
  };
  const client = new StreamChannel('client', stub.ActorChannel());
  client.send({ type: 'cancel', id: 0 }); // opens the stream so the server sees the call
  const serverChannel = await serverSide;
  await new Promise<void>((r) => serverChannel.onMessage(() => r()));
  return {
    client,
    server: serverChannel,
    async close() {
      client.shutdown('done');
      serverChannel.shutdown('done');
      stub.close();
      await new Promise<void>((r) => server.tryShutdown(() => r()));
    },
  };
}
