/**
 * The proxy's own routes, under '/-/' (never an application prefix) plus '/metrics':
 * healthz, routes, status (what `serve status` reads), Prometheus metrics and shutdown. Who may call them
 * is decided before they run (ingress/http-auth.ts): with keys configured, monitoring routes need an admin
 * or metrics key and shutdown an admin key; without keys, shutdown is accepted from loopback only.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { FlotillaMetrics } from './metrics.js';
import type { IngressTarget } from '../ingress/ingress-target.js';
import type { ServeStatus } from '../contract/status.js';

export interface AdminContext {
  target: IngressTarget;
  metrics: FlotillaMetrics;
  isDraining(): boolean;
  /** Fills in the addresses the instance itself may not know (the proxies' bound ports). */
  decorateStatus(status: ServeStatus): ServeStatus;
  /** Called after answering POST /-/shutdown; absent: the route answers 501. */
  onShutdown?: () => void;
  /** True when the proxy has keys: the auth hook has checked an admin key, so shutdown is accepted from any address. */
  keysChecked?: boolean;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

export function registerAdminRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const json = 'application/json; charset=utf-8';
  app.get('/-/healthz', async (_req, reply) => {
    if (ctx.isDraining()) return reply.code(503).type('text/plain').send('draining');
    return reply.type('text/plain').send('ok');
  });
  app.get('/-/routes', async (_req, reply) => {
    const routes = ctx.target.routes().map((r) => ({
      app: r.app,
      routePrefix: r.routePrefix,
      ingress: r.ingress,
      deployments: r.deployments,
      methods: r.methods,
      rawHttp: r.rawHttp,
    }));
    return reply.type(json).send(JSON.stringify({ routes }));
  });
  app.get('/-/status', async (_req, reply) =>
    reply.type(json).send(JSON.stringify(ctx.decorateStatus(ctx.target.status()))),
  );
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await ctx.metrics.scrape();
    return reply.type(contentType).send(body);
  });
  app.post('/-/shutdown', async (req, reply) => {
    if (!ctx.keysChecked && !isLoopback(req)) {
      return reply
        .code(403)
        .type(json)
        .send(
          JSON.stringify({
            error: {
              code: 'FORBIDDEN',
              message:
                'POST /-/shutdown is accepted only from loopback when the proxy has no keys; run `serve shutdown` ' +
                'on the host itself, or configure an admin key (--admin-key-file).',
            },
          }),
        );
    }
    if (!ctx.onShutdown) {
      return reply
        .code(501)
        .type(json)
        .send(
          JSON.stringify({
            error: {
              code: 'NOT_IMPLEMENTED',
              message: 'This instance was started without a shutdown hook; stop it with SIGTERM.',
            },
          }),
        );
    }
    const onShutdown = ctx.onShutdown;
    // Answer first: the drain that follows closes this very server.
    reply.raw.once('finish', () => setImmediate(onShutdown));
    return reply
      .code(202)
      .type(json)
      .send(JSON.stringify({ shuttingDown: true }));
  });
}

function isLoopback(req: FastifyRequest): boolean {
  return LOOPBACK.has(req.socket.remoteAddress ?? '');
}
