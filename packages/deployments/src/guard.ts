/**
 * The LLM server's front door, run in the replica before a request reaches the engine: API keys
 * (Authorization: Bearer), per-key token buckets on requests and on tokens, and the body-size limit.
 *
 * Token limits charge an estimate (prompt + max_tokens) at admission and refund what was not generated
 * at the end, so concurrent requests cannot overdraw a key; a key in debt is refused until refilled.
 *
 * Where the buckets live: `rateLimits` keeps them in the replica (KeyBuckets here), exact for one
 * replica; with N replicas a key could get up to N times its limit. A deployment of several replicas
 * should be given a RateLimiter instead (rate-limiter.ts): one deployment holding the buckets for all.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AuthenticationError, LLMServerConfigError, RateLimitError, RequestTooLargeError } from './errors.js';
import { TokenBucket } from './token-bucket.js';

export interface BucketLimit {
  /** Sustained rate, per minute. */
  perMinute: number;
  /** Most that may be spent at once. Default: perMinute. */
  burst?: number;
}

export interface RateLimits {
  /** Requests per key. Default: unlimited. */
  requests?: BucketLimit;
  /** Prompt + generated tokens per key. Default: unlimited. */
  tokens?: BucketLimit;
}

export interface GuardOptions {
  /** Accepted keys. Default: none. */
  apiKeys?: string[];
  /** File with one key per line ('#' starts a comment). Default: none. Keys from both are accepted; neither: no authentication. */
  apiKeyFile?: string;
  /** Default: none (unlimited). */
  rateLimits?: RateLimits;
  /** Clock in ms, for tests. Default Date.now. */
  now?: () => number;
}

interface Buckets {
  requests?: TokenBucket;
  tokens?: TokenBucket;
  /** Token reservations not yet settled: a bucket owed a settle is kept even when full (a late charge must land). */
  reservations: number;
}

/** How often take() looks for buckets to drop (ms). */
const PRUNE_INTERVAL_MS = 60_000;

/** What admission holds until the request ends. */
export interface Admission {
  keyId: string;
  /** Tokens charged up front, refunded down to the real count by settle(). */
  reservedTokens: number;
}

/** A rate-limit decision as plain data (it crosses from a shared RateLimiter to the replicas). */
export type RateDecision = { ok: true; reservedTokens: number } | { ok: false; message: string; retryAfterS: number };

/**
 * Per-key request and token buckets: pure policy over an injected clock. Keys come from clients (one
 * per IP when no API keys are configured), so the map must not keep every key ever seen: a key whose
 * buckets are full again behaves exactly like an unseen one, and take() drops such keys, sweeping at
 * most once per PRUNE_INTERVAL_MS (lazily, so there is no timer to stop).
 */
export class KeyBuckets {
  private readonly buckets = new Map<string, Buckets>();
  private lastPruneMs: number;

  constructor(
    private readonly limits: RateLimits = {},
    private readonly now: () => number = Date.now,
  ) {
    for (const [what, limit] of Object.entries(limits)) {
      if (limit && !(limit.perMinute > 0)) throw new LLMServerConfigError(`rateLimits.${what}.perMinute must be > 0`);
      if (limit?.burst !== undefined && !(limit.burst > 0))
        throw new LLMServerConfigError(`rateLimits.${what}.burst must be > 0`);
    }
    this.lastPruneMs = now();
  }

  /** Keys holding buckets now (for tests and leak checks). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one request and reserves `estimatedTokens`, or says why not and when to retry (taking nothing). */
  take(keyId: string, estimatedTokens: number): RateDecision {
    if (!this.limits.requests && !this.limits.tokens) return { ok: true, reservedTokens: 0 };
    this.maybePrune();
    const b = this.bucketsOf(keyId);
    if (b.tokens && b.tokens.available <= 0) {
      return {
        ok: false,
        message: `Token rate limit reached for ${keyId} (${this.limits.tokens!.perMinute} tokens/min).`,
        retryAfterS: retryAfter(b.tokens.secondsUntil(1)),
      };
    }
    if (b.requests && !b.requests.tryTake(1)) {
      return {
        ok: false,
        message: `Request rate limit reached for ${keyId} (${this.limits.requests!.perMinute} requests/min).`,
        retryAfterS: retryAfter(b.requests.secondsUntil(1)),
      };
    }
    if (!b.tokens) return { ok: true, reservedTokens: 0 };
    b.tokens.charge(estimatedTokens);
    // Callers settle only positive reservations (LLMServer skips the call for 0), so only those are counted.
    if (estimatedTokens > 0) b.reservations++;
    return { ok: true, reservedTokens: estimatedTokens };
  }

  /** Settles a reservation against the tokens really used. */
  settle(keyId: string, reservedTokens: number, usedTokens: number): void {
    const b = this.buckets.get(keyId);
    const tokens = b?.tokens;
    if (!tokens) return;
    if (reservedTokens > 0 && b.reservations > 0) b.reservations--;
    const diff = reservedTokens - usedTokens;
    if (diff > 0) tokens.refund(diff);
    else if (diff < 0) tokens.charge(-diff);
  }

  /** Drops keys whose buckets have all refilled and that owe no settle; at most once per PRUNE_INTERVAL_MS. */
  prune(): void {
    this.lastPruneMs = this.now();
    for (const [key, b] of this.buckets) {
      if (b.reservations === 0 && (b.requests?.isFull ?? true) && (b.tokens?.isFull ?? true)) this.buckets.delete(key);
    }
  }

  private maybePrune(): void {
    if (this.now() - this.lastPruneMs >= PRUNE_INTERVAL_MS) this.prune();
  }

  private bucketsOf(keyId: string): Buckets {
    let b = this.buckets.get(keyId);
    if (!b) {
      b = { reservations: 0 };
      if (this.limits.requests) b.requests = bucket(this.limits.requests, this.now);
      if (this.limits.tokens) b.tokens = bucket(this.limits.tokens, this.now);
      this.buckets.set(keyId, b);
    }
    return b;
  }
}

export class Guard {
  /** sha256(key) → key id. Keys are never kept in clear. */
  private readonly keys = new Map<string, string>();
  private readonly buckets: KeyBuckets;

  constructor(options: GuardOptions = {}) {
    const all = [...(options.apiKeys ?? []), ...(options.apiKeyFile ? readKeyFile(options.apiKeyFile) : [])];
    for (const key of all) {
      if (typeof key !== 'string' || key.length < 8)
        throw new LLMServerConfigError('API keys must be strings of at least 8 characters');
      const digest = sha256(key);
      this.keys.set(digest, `key-${digest.slice(0, 12)}`);
    }
    this.buckets = new KeyBuckets(options.rateLimits, options.now);
  }

  get requiresKey(): boolean {
    return this.keys.size > 0;
  }

  /** The caller's key id (a hash prefix, safe to log); without configured keys, one id per client IP. Throws AuthenticationError. */
  authenticate(headers: Record<string, string>, clientIp: string): string {
    if (!this.requiresKey) return `ip-${clientIp}`;
    const auth = headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (!m) throw new AuthenticationError('Missing API key: send Authorization: Bearer YOUR_KEY.');
    const id = this.keys.get(sha256(m[1]!));
    if (!id) throw new AuthenticationError('Invalid API key.');
    return id;
  }

  /** Takes one request and reserves `estimatedTokens`; throws RateLimitError (retryAfterS set) when a bucket is empty. */
  admit(keyId: string, estimatedTokens: number): Admission {
    return admissionOf(keyId, this.buckets.take(keyId, estimatedTokens));
  }

  /** Settles a reservation against the tokens really used. */
  settle(admission: Admission, usedTokens: number): void {
    this.buckets.settle(admission.keyId, admission.reservedTokens, usedTokens);
  }
}

/** The Admission of a positive decision; a negative one throws RateLimitError. */
export function admissionOf(keyId: string, d: RateDecision): Admission {
  if (!d.ok) throw new RateLimitError(d.message, d.retryAfterS);
  return { keyId, reservedTokens: d.reservedTokens };
}

/** Refuses bodies over `maxBytes`, by Content-Length (what the client sent) or, lacking it, the parsed body's size. */
export function checkBodySize(headers: Record<string, string>, body: unknown, maxBytes: number): void {
  const declared = Number(headers['content-length']);
  const size = Number.isFinite(declared)
    ? declared
    : body === undefined
      ? 0
      : Buffer.byteLength(typeof body === 'string' ? body : JSON.stringify(body));
  if (size > maxBytes)
    throw new RequestTooLargeError(
      `Request body is ${size} bytes; the limit is ${maxBytes} bytes (limits.maxBodyBytes).`,
    );
}

function bucket(limit: BucketLimit, now: () => number): TokenBucket {
  return new TokenBucket(limit.burst ?? limit.perMinute, limit.perMinute / 60, now);
}

function retryAfter(seconds: number): number {
  return Number.isFinite(seconds) ? Math.max(1, Math.ceil(seconds)) : 60;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function readKeyFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LLMServerConfigError(`apiKeyFile ${file} cannot be read: ${(err as Error).message}`);
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean);
}
