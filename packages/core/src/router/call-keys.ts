/**
 * The keys a router derives from a call with the deployment class's statics (routing-key.ts): the
 * prefix-aware routing key and the multiplexed model id, each only where the caller gave none. A key
 * function that throws costs the call its key, never the call itself (reported once per router).
 */
import type { ResolvedCallOptions } from '../handle.js';
import type { RoutingKeyFunction } from '../contract/deployment-options.js';

/** The router's live settings (a rolling update may swap the functions). */
export interface CallKeySettings {
  deployment: string;
  routing?: 'pow2' | 'prefix-aware';
  routingKey?: RoutingKeyFunction;
  modelIdOf?: RoutingKeyFunction;
}

export class CallKeys {
  private failureReported = false;

  constructor(private readonly settings: CallKeySettings) {}

  /** The call's own routingKey, else (routing 'prefix-aware') the one the deployment class derives. */
  routingKeyOf(method: string, args: unknown[], opts: ResolvedCallOptions): string | undefined {
    if (opts.routingKey !== undefined) return opts.routingKey;
    const { routing, routingKey } = this.settings;
    if (routing !== 'prefix-aware' || !routingKey) return undefined;
    try {
      return routingKey(method, args);
    } catch (err) {
      this.report('routingKey', err);
      return undefined;
    }
  }

  /**
   * The call's options with the multiplexed model id the class derives (static multiplexedModelId),
   * where the caller named none: a copy, so that the replica's getMultiplexedModelId() sees it too,
   * made field by field so that a lazily built `signal` is not built.
   */
  withModelId(method: string, args: unknown[], opts: ResolvedCallOptions): ResolvedCallOptions {
    const derive = this.settings.modelIdOf;
    if (opts.multiplexedModelId !== undefined || !derive) return opts;
    let id: string | undefined;
    try {
      id = derive(method, args);
    } catch (err) {
      this.report('multiplexedModelId', err);
    }
    if (id === undefined) return opts;
    const out: ResolvedCallOptions = { requestId: opts.requestId, multiplexedModelId: id };
    const cancel = opts.cancel;
    if (cancel) {
      out.cancel = cancel;
      Object.defineProperty(out, 'signal', { get: () => cancel.signal, enumerable: true });
    } else if (opts.signal) out.signal = opts.signal;
    if (opts.routingKey !== undefined) out.routingKey = opts.routingKey;
    return out;
  }

  private report(what: 'routingKey' | 'multiplexedModelId', err: unknown): void {
    if (this.failureReported) return;
    this.failureReported = true;
    process.stderr.write(
      `[flotilla] ${this.settings.deployment}.${what} threw (${(err as Error)?.message ?? err}); ` +
        'such calls are routed without it (reported once)\n',
    );
  }
}
