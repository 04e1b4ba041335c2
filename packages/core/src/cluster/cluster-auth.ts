/**
 * Authentication of the cluster port: every call, unary or stream, carries `authorization: Bearer TOKEN`
 * (clients add it with clientAuthInterceptor). The head's server interceptor checks it before any
 * handler runs; a call without it, or with another token, ends with UNAUTHENTICATED and one log line
 * naming the peer's address (never what it presented).
 *
 * Comparison is constant-time: both sides are hashed to SHA-256 digests of equal length first, so
 * neither the token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';

export const AUTHORIZATION_KEY = 'authorization';
const BEARER = 'Bearer ';

export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** True when `presented` is the token whose digest is `expected` (constant time). */
export function tokenMatches(presented: string, expected: Buffer): boolean {
  return timingSafeEqual(tokenDigest(presented), expected);
}

/** The bearer token of an `authorization` metadata value, or undefined. */
export function bearerToken(value: unknown): string | undefined {
  if (typeof value !== 'string' || !value.startsWith(BEARER)) return undefined;
  return value.slice(BEARER.length).trim() || undefined;
}

/** Why a call's metadata does not authenticate, or null when it does. */
export function authProblem(metadata: grpc.Metadata, expected: Buffer): string | null {
  const values = metadata.get(AUTHORIZATION_KEY);
  if (values.length === 0) return 'no cluster token';
  const token = bearerToken(values[0]);
  if (token === undefined) return 'a malformed authorization header (expected "Bearer TOKEN")';
  return tokenMatches(token, expected) ? null : 'a wrong cluster token';
}

/** Refusal lines: at most one a second, so that a flood of strangers cannot flood the log. */
export class RefusalLog {
  private lastMs = 0;
  private suppressed = 0;

  constructor(
    private readonly log: ((line: string) => void) | undefined,
    private readonly everyMs = 1000,
  ) {}

  refused(method: string, peer: string, why: string, nowMs = Date.now()): void {
    if (!this.log) return;
    if (nowMs - this.lastMs < this.everyMs) {
      this.suppressed++;
      return;
    }
    const more = this.suppressed > 0 ? ` (and ${this.suppressed} more refused calls since the last line)` : '';
    this.lastMs = nowMs;
    this.suppressed = 0;
    this.log(`refused ${method} from ${peer}: ${why}${more}`);
  }
}

/**
 * The head's interceptor. `expected()` is the accepted token's digest, undefined until the head resolved
 * it (every call is refused until then; the port is not bound before either).
 */
export function serverAuthInterceptor(
  expected: () => Buffer | undefined,
  refusals: RefusalLog,
): grpc.ServerInterceptor {
  return (method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            const digest = expected();
            const problem = digest ? authProblem(metadata, digest) : 'the head is starting';
            if (problem === null) return nextMetadata(metadata);
            refusals.refused(method.path.split('/').pop() ?? method.path, call.getPeer(), problem);
            call.sendStatus({
              code: grpc.status.UNAUTHENTICATED,
              details:
                `${problem}: this head requires its cluster token ` +
                '(FLOTILLA_CLUSTER_TOKEN, --token-file, or ~/.flotilla/cluster-token on the head machine)',
              metadata: new grpc.Metadata(),
            });
          },
        }),
    });
}

/** Adds the token to every call of a client (unary and streams); `token()` is read at each call. */
export function clientAuthInterceptor(token: () => string | undefined): grpc.Interceptor {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        const t = token();
        if (t !== undefined) metadata.set(AUTHORIZATION_KEY, `${BEARER}${t}`);
        next(metadata, listener);
      },
    });
}
