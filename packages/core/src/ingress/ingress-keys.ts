/**
 * Who may use the proxies: three kinds of keys and what each may reach. Pure policy (a key set in, a verdict
 * out); the HTTP and gRPC proxies read the credential from the request and answer the verdict.
 *
 * - API keys call applications (HTTP routes under a prefix, gRPC Serve.Call/Stream and bound services).
 * - Metrics keys read the monitoring routes only: /metrics, /-/status, /-/routes, /-/timeseries,
 *   /-/dashboard and gRPC Serve.ListApplications.
 * - Admin keys do everything: applications, monitoring, POST /-/shutdown, and model file paths
 *   (a deployment sees `auth.role === 'admin'`).
 *
 * With no key configured at all nothing is checked (the proxies listen on loopback by default). With any
 * key configured, every route needs one except the liveness probes (/-/healthz, gRPC Healthz and an
 * application's GET {prefix}/health).
 *
 * The credential is `authorization: Bearer KEY` (an HTTP header or gRPC metadata), or
 * `authorization: Basic base64(user:KEY)`, which browsers send after their login prompt (the dashboard).
 * Keys are kept as SHA-256 digests only; the id a request carries (`key-` + 12 hex digits of the digest)
 * is safe to log and is the LLM server's rate-limit key.
 */
import { createHash } from 'node:crypto';
import { DeploymentConfigError, ForbiddenError, UnauthenticatedError } from '../errors.js';
import type { KeyRole, RequestAuth } from '../contract/routes.js';

export interface IngressKeys {
  /** Keys that call applications. Default: none. */
  apiKeys?: readonly string[];
  /** Keys that may do everything (applications, monitoring, shutdown). Default: none. */
  adminKeys?: readonly string[];
  /** Keys that read the monitoring routes only. Default: none. */
  metricsKeys?: readonly string[];
}

/** What a route needs: nothing, an API key, a monitoring key, or an admin key. */
export type Access = 'open' | 'app' | 'monitor' | 'admin';

/** Shortest accepted key (the LLM server's guard has the same floor). */
export const MIN_KEY_LENGTH = 8;

const RANK: Record<KeyRole, number> = { metrics: 1, api: 2, admin: 3 };
const ALLOWED: Record<Exclude<Access, 'open'>, readonly KeyRole[]> = {
  app: ['api', 'admin'],
  monitor: ['metrics', 'admin'],
  admin: ['admin'],
};

export type Verdict = { ok: true; auth?: RequestAuth } | { ok: false; error: UnauthenticatedError | ForbiddenError };

export class KeyRing {
  /** sha256(key) → role; a key listed under several kinds gets the strongest. */
  private readonly roles = new Map<string, KeyRole>();

  constructor(keys: IngressKeys = {}) {
    const add = (list: readonly string[] | undefined, role: KeyRole, what: string) => {
      for (const key of list ?? []) {
        if (typeof key !== 'string' || key.length < MIN_KEY_LENGTH || /\s/.test(key)) {
          throw new DeploymentConfigError(
            `${what} must be strings of at least ${MIN_KEY_LENGTH} characters without spaces`,
          );
        }
        const digest = sha256(key);
        const known = this.roles.get(digest);
        if (!known || RANK[role] > RANK[known]) this.roles.set(digest, role);
      }
    };
    add(keys.apiKeys, 'api', 'API keys');
    add(keys.adminKeys, 'admin', 'admin keys');
    add(keys.metricsKeys, 'metrics', 'metrics keys');
  }

  /** True once any key is configured: from then on every route but the liveness probes needs one. */
  get enabled(): boolean {
    return this.roles.size > 0;
  }

  /**
   * The verdict for a request to a route needing `access`, given its `authorization` value. With no keys
   * configured everything is allowed and no `auth` is given.
   */
  check(authorization: string | undefined, access: Access, what = 'this route'): Verdict {
    if (!this.enabled || access === 'open') return { ok: true };
    const key = credentialOf(authorization);
    if (key === undefined)
      return { ok: false, error: new UnauthenticatedError('Missing API key: send Authorization: Bearer YOUR_KEY.') };
    const digest = sha256(key);
    const role = this.roles.get(digest);
    if (!role) return { ok: false, error: new UnauthenticatedError('Invalid API key.') };
    if (!ALLOWED[access].includes(role))
      return { ok: false, error: new ForbiddenError(forbiddenMessage(role, access, what)) };
    return { ok: true, auth: { role, keyId: keyIdOf(digest) } };
  }
}

/** The key in `Bearer KEY`, or the password (else the user) of `Basic base64(user:password)`. */
export function credentialOf(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
  if (!basic) return undefined;
  const text = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  const key = colon < 0 ? text : text.slice(colon + 1) || text.slice(0, colon);
  return key || undefined;
}

/** The id requests carry for a key: a digest prefix (the LLM server's guard names keys the same way). */
export function keyIdOf(digest: string): string {
  return `key-${digest.slice(0, 12)}`;
}

function forbiddenMessage(role: KeyRole, access: Exclude<Access, 'open'>, what: string): string {
  if (access === 'admin') return `${what} needs an admin key; this is ${article(role)} key.`;
  if (access === 'monitor') return `${what} needs an admin or metrics key; this is ${article(role)} key.`;
  return `A ${role} key reads the monitoring routes only; call applications with an API key.`;
}

function article(role: KeyRole): string {
  return role === 'api' ? 'an API' : `a ${role}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
