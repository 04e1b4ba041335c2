/**
 * The CallServers through which calls that arrive from elsewhere reach this process's routers: an
 * agent's HTTP proxy's requests (cluster head, ProxyChannel) and the handle calls that replicas relay
 * here when they have no direct link. Each picks a Router per call and forwards the call's method,
 * arguments, request id, routing key and model id to it.
 *
 * Separate from serve-instance.ts: ServeInstance decides which router serves a call (draining, the
 * calling deployment, relay counts); this file is only the CallServer shape around that choice.
 */
import type { CallServer, IncomingCall } from './actor/rpc-peer.js';
import type { Router } from './router/router.js';

/**
 * Serves the requests of an agent's HTTP proxy, as the ingress of this process does. `route` may throw
 * (draining, no target): the unary call rejects, the stream fails on its first read.
 */
export function proxyCallServer(route: (call: IncomingCall) => Router): CallServer {
  return {
    admit: () => null,
    release: () => {},
    unary: async (call, signal) =>
      route(call).call(call.method, call.args, {
        requestId: call.requestId,
        signal,
        routingKey: call.routingKey,
        multiplexedModelId: call.multiplexedModelId,
      }),
    stream: (call, signal) => {
      try {
        return route(call).stream(call.method, call.args, {
          requestId: call.requestId,
          signal,
          routingKey: call.routingKey,
          multiplexedModelId: call.multiplexedModelId,
        });
      } catch (err) {
        return rejectStream(err as Error);
      }
    },
  };
}

/** Serves the handle calls that replicas of one deployment relay to this process. */
export function relayCallServer(route: (call: IncomingCall) => Router): CallServer {
  return {
    admit: () => null,
    release: () => {},
    unary: (call, signal) =>
      route(call).call(call.method, call.args, {
        requestId: call.requestId,
        signal,
        routingKey: call.routingKey,
        multiplexedModelId: call.multiplexedModelId,
      }),
    stream: (call, signal) =>
      route(call).stream(call.method, call.args, {
        requestId: call.requestId,
        signal,
        routingKey: call.routingKey,
        multiplexedModelId: call.multiplexedModelId,
      }),
  };
}

/** A stream that fails with `err` on its first read. */
export async function* rejectStream(err: Error): AsyncGenerator<never> {
  throw err;
}
