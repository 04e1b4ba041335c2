/**
 * Starts the real runtime (startServe: controller, thread and process replicas) with the real proxies on
 * free ports, for the ingress integration tests.
 */
import { startServe, type ApplicationSpec, type ServeInstance } from '../../packages/core/src/serve-instance.js';
import { Ingress, type IngressOptions } from '../../packages/core/src/ingress/ingress.js';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { SERVE_PROTO_PATH } from '../../packages/core/src/ingress/grpc-proxy.js';

export interface Served {
  instance: ServeInstance;
  ingress: Ingress;
  /** e.g. http://127.0.0.1:40123 */
  url: string;
  grpcAddress: string;
  close(): Promise<void>;
}

export async function serveForTest(applications: ApplicationSpec[], options: IngressOptions = {}): Promise<Served> {
  const instance = await startServe({ applications });
  let ingress: Ingress;
  try {
    ingress = await Ingress.start(instance, {
      ...options,
      http: options.http === false ? false : { port: 0, ...options.http },
      grpc: options.grpc === false ? false : { port: 0, ...options.grpc },
      events: instance.events,
    });
  } catch (err) {
    await instance.shutdown();
    throw err;
  }
  return {
    instance,
    ingress,
    url: ingress.http?.url ?? '',
    grpcAddress: ingress.grpc?.address ?? '',
    async close() {
      await ingress.close(500);
      await instance.shutdown();
    },
  };
}

/** Polls `probe` until it returns true (or throws after `timeoutMs`). */
export async function eventually(
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A client of the proxy's protos/serve.proto Serve service (Call, Stream, ListApplications, Healthz), plaintext. */
export function serveClient(address: string): any {
  const pkg = grpc.loadPackageDefinition(
    protoLoader.loadSync(SERVE_PROTO_PATH, { keepCase: true, defaults: true }),
  ) as any;
  return new pkg.flotilla.serve.v1.Serve(address, grpc.credentials.createInsecure());
}
