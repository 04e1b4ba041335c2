/**
 * One request's cancellation scope: one Cancellation that fires on client disconnect, on the proxy's
 * request timeout, or when the proxy gives up on the request. It goes down in CallOptions (`cancel`),
 * so the router, the actor transport and the replica's generator all stop together, and no AbortSignal
 * is built unless something downstream asks for one (see actor/cancellation.ts).
 */
import { Cancellation } from '../actor/cancellation.js';
import { RequestCancelledError, RequestTimeoutError } from '../errors.js';
import type { CallOptions } from '../contract/routes.js';

export type AbortCause = 'disconnect' | 'timeout' | 'cancel';

export class RequestScope {
  readonly cancellation = new Cancellation();
  /** What the proxies pass to handle calls: the request id and the cancellation (`signal` built on demand). */
  readonly callOptions: CallOptions;
  private timer: NodeJS.Timeout | undefined;
  private finished = false;
  /** Rejecters of the races in flight (see race()). */
  private racers: Set<(reason: unknown) => void> | undefined;
  cause: AbortCause | undefined;

  constructor(
    readonly requestId: string,
    timeoutMs: number | undefined,
  ) {
    if (timeoutMs !== undefined && timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(() => this.abort('timeout', timeoutMs), timeoutMs);
      this.timer.unref();
    }
    const cancel = this.cancellation;
    this.callOptions = {
      requestId,
      cancel,
      get signal() {
        return cancel.signal;
      },
    };
  }

  /** The multiplexed model the client named (ingress/multiplex-header.ts), for every call of this request. */
  setMultiplexedModelId(id: string | undefined): void {
    if (id !== undefined) this.callOptions.multiplexedModelId = id;
  }

  /** A real AbortSignal for this request (built on first use). */
  get signal(): AbortSignal {
    return this.cancellation.signal;
  }

  get aborted(): boolean {
    return this.cancellation.aborted;
  }

  /** Stops the request timeout (a stream that has started is governed by its client, not by the timeout). */
  clearTimeout(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  abort(cause: AbortCause, timeoutMs?: number): void {
    // After the response is complete a socket 'close' is no disconnect, and building the error is not free.
    if (this.aborted || this.finished) return;
    this.cause = cause;
    this.clearTimeout();
    this.cancellation.abort(
      cause === 'timeout'
        ? new RequestTimeoutError(`Request ${this.requestId} exceeded the proxy's request timeout of ${timeoutMs} ms.`)
        : new RequestCancelledError(
            `Request ${this.requestId} was cancelled (${cause === 'disconnect' ? 'client disconnected' : 'cancelled'}).`,
          ),
    );
  }

  /** The error that explains an aborted scope (timeout or cancel). */
  get reason(): unknown {
    return this.cancellation.reason;
  }

  /** Resolves or rejects with `promise`, or rejects with the abort reason as soon as the scope aborts. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.aborted) {
      promise.catch(() => {});
      return Promise.reject(this.reason);
    }
    // A stream races every item: one abort listener per scope and a Set entry per race.
    if (!this.racers) {
      const racers = new Set<(reason: unknown) => void>();
      this.racers = racers;
      this.cancellation.onAbort(() => {
        for (const reject of racers) reject(this.reason);
        racers.clear();
      });
    }
    const racers = this.racers;
    return new Promise<T>((resolve, reject) => {
      racers.add(reject);
      promise.then(
        (v) => {
          racers.delete(reject);
          resolve(v);
        },
        (e) => {
          racers.delete(reject);
          reject(this.aborted ? this.reason : e);
        },
      );
    });
  }

  /** The request is over: stop the timer and ignore later aborts. */
  dispose(): void {
    this.finished = true;
    this.clearTimeout();
  }
}
