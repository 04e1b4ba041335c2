/** The short banner `serve run` prints once everything is up: every endpoint, every route. */
import type { RouteInfo } from '../contract/routes.js';

export interface BannerInput {
  http?: string;
  grpc?: string;
  routes: RouteInfo[];
  source: string;
}

export function renderBanner(b: BannerInput): string {
  const lines = [`Flotilla is serving ${b.source}`];
  if (b.http) {
    for (const r of b.routes) {
      const base = `${b.http}${r.routePrefix === '/' ? '' : r.routePrefix}`;
      if (r.rawHttp) {
        lines.push(`  ${r.app.padEnd(12)} ${base}/*  (HTTP handled by ${r.ingress})`);
        continue;
      }
      const methods = Object.entries(r.methods).map(
        ([m, k]) => (m === '__call__' ? `${base}` : `${base}/${m}`) + (k === 'stream' ? ' (stream)' : ''),
      );
      lines.push(`  ${r.app.padEnd(12)} POST ${methods.join(', ') || `${base} (no public methods)`}`);
    }
    lines.push(`  health       ${b.http}/-/healthz   routes ${b.http}/-/routes   status ${b.http}/-/status`);
    lines.push(`  metrics      ${b.http}/metrics   dashboard ${b.http}/-/dashboard`);
  }
  if (b.grpc)
    lines.push(`  gRPC         ${b.grpc}  (flotilla.serve.v1.Serve: Call, Stream, ListApplications, Healthz)`);
  lines.push('Press Ctrl+C to drain and stop (or run `serve shutdown`).');
  return `${lines.join('\n')}\n`;
}
