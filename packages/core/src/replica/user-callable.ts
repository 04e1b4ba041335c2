/**
 * The one wrapper through which a replica runs user code: method lookup (public methods only), the
 * request context (AsyncLocalStorage) around every call and every resume of a generator, and the
 * optional lifecycle methods checkHealth(), reconfigure(config), autoscalingMetrics(), collectMetrics()
 * and the destructor `[Symbol.asyncDispose]()` or `dispose()` (called once as the replica stops).
 *
 * autoscalingMetrics(): `Record<string, number> | Promise<...>`, called every metricsIntervalS outside
 * the request queue; the numbers reach the autoscaling policy summed over replicas and averaged over
 * lookBackPeriodS (AutoscalingContext.metrics.custom). An LLM replica reports `waitingRequests` (its
 * engine's waiting queue) and `kvCacheUsage` (0..1), which the 'llm' policy reads. Keep it cheap; a
 * throw or a non-number is ignored (a missed report never fails the replica).
 */
import { BadRequestError, NotFoundError } from '../errors.js';
import { requestContextStorage, type RequestContext } from '../request-context.js';
import { MULTIPLEXED_LOADER } from '../multiplexed.js';
import type { MethodKind } from '../contract/routes.js';

/** Not callable through handles or proxies. */
const LIFECYCLE = new Set([
  'constructor',
  'checkHealth',
  'reconfigure',
  'autoscalingMetrics',
  'collectMetrics',
  'dispose',
]);
/** Callable although it starts with '_': the default method of an HTTP route, as in Ray Serve. */
const DEFAULT_METHOD = '__call__';

type Method = (...args: unknown[]) => unknown;

export class UserCallable {
  readonly methods: Record<string, MethodKind>;
  /** The class's `static internalMethods` that are methods of it (see RouteInfo.internalMethods). */
  readonly internalMethods: string[];

  constructor(
    private readonly instance: object,
    private readonly deployment: string,
  ) {
    this.methods = methodsOf(instance);
    this.internalMethods = internalMethodsOf(instance, deployment).filter((m) => Object.hasOwn(this.methods, m));
  }

  get rawHttp(): boolean {
    return 'handleHttp' in this.methods;
  }

  /** The class's `static handlesMalformedJson` (a raw-HTTP class that answers unparsable JSON itself). */
  get handlesMalformedJson(): boolean {
    return (this.instance.constructor as { handlesMalformedJson?: unknown }).handlesMalformedJson === true;
  }

  async unary(method: string, args: unknown[], ctx: RequestContext): Promise<unknown> {
    const fn = this.lookup(method);
    if (this.methods[method] === 'stream') {
      throw new BadRequestError(
        `${this.deployment}.${method} is a streaming method; call it with remoteStream or handle.stream`,
      );
    }
    return requestContextStorage.run(ctx, () => fn.apply(this.instance, args));
  }

  /** A unary method called as a stream yields its one result. */
  stream(method: string, args: unknown[], ctx: RequestContext): AsyncIterable<unknown> {
    const fn = this.lookup(method);
    if (this.methods[method] !== 'stream') {
      return (async function* (self) {
        yield await self.unary(method, args, ctx);
      })(this);
    }
    const gen = requestContextStorage.run(ctx, () => fn.apply(this.instance, args)) as AsyncIterator<unknown>;
    // A generator body runs in the context of whoever resumes it, so every resume re-enters the context.
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => requestContextStorage.run(ctx, () => gen.next()),
        return: (value?: unknown) =>
          requestContextStorage.run(ctx, () =>
            gen.return ? gen.return(value) : Promise.resolve({ done: true as const, value }),
          ),
      }),
    };
  }

  async checkHealth(): Promise<void> {
    const fn = (this.instance as { checkHealth?: () => unknown }).checkHealth;
    if (typeof fn === 'function') await fn.call(this.instance);
  }

  async reconfigure(config: unknown): Promise<void> {
    const fn = (this.instance as { reconfigure?: (c: unknown) => unknown }).reconfigure;
    if (typeof fn === 'function') await fn.call(this.instance, config);
  }

  async autoscalingMetrics(): Promise<Record<string, number> | undefined> {
    const fn = (this.instance as { autoscalingMetrics?: () => unknown }).autoscalingMetrics;
    if (typeof fn !== 'function') return undefined;
    try {
      const raw = await fn.call(this.instance);
      if (typeof raw !== 'object' || raw === null) return undefined;
      return Object.fromEntries(Object.entries(raw).filter(([, v]) => typeof v === 'number' && Number.isFinite(v)));
    } catch {
      return undefined;
    }
  }

  /** The user's collectMetrics(): prom-client metric JSON (registry.getMetricsAsJSON()) for the proxy's /metrics; [] without one or on error. */
  async collectMetrics(): Promise<unknown[]> {
    const fn = (this.instance as { collectMetrics?: () => unknown }).collectMetrics;
    if (typeof fn !== 'function') return [];
    try {
      const raw = await fn.call(this.instance);
      return Array.isArray(raw) ? raw : [];
    } catch {
      return [];
    }
  }

  /** The user's `[Symbol.asyncDispose]()`, else `dispose()`; nothing without either. The caller calls it once. */
  async dispose(): Promise<void> {
    const inst = this.instance as { [Symbol.asyncDispose]?: () => unknown; dispose?: () => unknown };
    const fn = typeof inst[Symbol.asyncDispose] === 'function' ? inst[Symbol.asyncDispose] : inst.dispose;
    if (typeof fn === 'function') await fn.call(this.instance);
  }

  private lookup(method: string): Method {
    if (!Object.hasOwn(this.methods, method)) {
      throw new NotFoundError(
        `${this.deployment} has no method '${method}' (methods: ${Object.keys(this.methods).join(', ') || 'none'})`,
        { method },
      );
    }
    return (this.instance as Record<string, Method>)[method]!;
  }
}

/**
 * Public methods along the prototype chain (not `_private` except __call__, not lifecycle, not a
 * @multiplexed loader: its result is a model, used in the replica), with their kind.
 */
export function methodsOf(instance: object): Record<string, MethodKind> {
  const methods: Record<string, MethodKind> = {};
  for (
    let proto = Object.getPrototypeOf(instance);
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name in methods || LIFECYCLE.has(name) || (name.startsWith('_') && name !== DEFAULT_METHOD)) continue;
      const desc = Object.getOwnPropertyDescriptor(proto, name);
      if (!desc || typeof desc.value !== 'function' || MULTIPLEXED_LOADER in desc.value) continue;
      const tag = Object.prototype.toString.call(desc.value);
      methods[name] = tag === '[object AsyncGeneratorFunction]' ? 'stream' : 'unary';
    }
  }
  return methods;
}

/**
 * `static internalMethods` of the instance's class (inherited statics count): methods meant for the
 * app's other deployments only — a graph's token stream behind an API front, a KV handoff between
 * prefill and decode — which skip the checks of the class's public entry points (keys, rate limits,
 * audit) or take payloads only a peer should send. The proxies refuse them to their clients.
 */
function internalMethodsOf(instance: object, deployment: string): string[] {
  const declared = (instance.constructor as { internalMethods?: unknown }).internalMethods;
  if (declared === undefined) return [];
  if (!Array.isArray(declared) || !declared.every((m) => typeof m === 'string'))
    throw new TypeError(`${deployment}: static internalMethods must be an array of method names`);
  return [...new Set(declared as string[])];
}
