/**
 * Where a call's routing key comes from: the deployment class declares it (`static routingKey(method,
 * args)`, see DeploymentOptions.routing), so core never looks inside payloads. Read once per deployment
 * spec in the process that imported the class (the controller's), where every router lives.
 */
import { DeploymentConfigError } from '../errors.js';
import type { RoutingKeyFunction } from '../contract/deployment-options.js';

/**
 * The class's static routingKey bound to the class (so `this` in it is the class, and a subclass's
 * static settings apply), or undefined when it declares none. Throws DeploymentConfigError when
 * `routingKey` is not a function, or when routing is 'prefix-aware' and there is none to route by.
 */
export function routingKeyOf(
  cls: unknown,
  routing: 'pow2' | 'prefix-aware',
  where: string,
): RoutingKeyFunction | undefined {
  const declared = (cls as { routingKey?: unknown } | null | undefined)?.routingKey;
  if (declared !== undefined && typeof declared !== 'function') {
    throw new DeploymentConfigError(
      `${where}: static routingKey must be a function (method, args) => string | undefined, got ${typeof declared}`,
    );
  }
  if (declared === undefined) {
    if (routing === 'prefix-aware') {
      throw new DeploymentConfigError(
        `${where}: routing 'prefix-aware' needs the class to declare static routingKey(method, args) returning ` +
          "the call's key (e.g. a prefix of its prompt); without it every call would be routed by power of two choices",
      );
    }
    return undefined;
  }
  const fn = declared as (this: unknown, method: string, args: readonly unknown[]) => unknown;
  return (method, args) => {
    const key = fn.call(cls, method, args);
    return typeof key === 'string' ? key : undefined;
  };
}

/**
 * The class's `static multiplexedModelId(method, args)` bound to it: the multiplexed model a call is for,
 * derived from its arguments where the client did not name one (e.g. LLMServer from an OpenAI body's
 * `model`), in the same callers' routers as routingKey and under the same rules (cheap, synchronous,
 * pure; a non-string, an empty string or a throw means none). undefined when the class declares none;
 * DeploymentConfigError when it is not a function.
 */
export function modelIdFunctionOf(cls: unknown, where: string): RoutingKeyFunction | undefined {
  const declared = (cls as { multiplexedModelId?: unknown } | null | undefined)?.multiplexedModelId;
  if (declared === undefined) return undefined;
  if (typeof declared !== 'function') {
    throw new DeploymentConfigError(
      `${where}: static multiplexedModelId must be a function (method, args) => string | undefined, got ${typeof declared}`,
    );
  }
  const fn = declared as (this: unknown, method: string, args: readonly unknown[]) => unknown;
  return (method, args) => {
    const id = fn.call(cls, method, args);
    return typeof id === 'string' && id !== '' ? id : undefined;
  };
}
