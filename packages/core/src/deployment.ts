/**
 * `@deployment(options)`: marks a class as a deployment (TC39 class decorator, no reflect-metadata).
 * The class gets a static `bind(...args)` that returns an Application node (application.ts), and is
 * registered by name so that a replica, which loads the user's module by path, can find it even when
 * the module does not export it.
 */
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Application } from './application.js';
import { validateDeploymentOptions } from './config.js';
import type { DeploymentDefinition, DeploymentOptions } from './contract/deployment-options.js';

const definitions = new WeakMap<object, DeploymentDefinition>();
/** Process-wide, so a second copy of this module (two loaders) still finds the classes. */
const registry: Map<string, DeploymentDefinition> = ((globalThis as Record<symbol, unknown>)[
  Symbol.for('flotilla.deployments')
] ??= new Map()) as Map<string, DeploymentDefinition>;

export function deployment(options: DeploymentOptions = {}) {
  return function decorate<C extends abstract new (...args: any[]) => unknown>(
    cls: C,
    context: ClassDecoratorContext<C>,
  ): void {
    const name = options.name ?? String(context.name);
    validateDeploymentOptions(options, `@deployment(${name})`);
    const modulePath = options.module ? toPath(options.module) : callerModule();
    const definition: DeploymentDefinition = { name, modulePath, options, cls };
    definitions.set(cls, definition);
    registry.set(name, definition);
    Object.defineProperty(cls, 'bind', {
      value: (...args: unknown[]) => new Application(definition, args),
      configurable: true,
      writable: true,
    });
  };
}

export function getDeploymentDefinition(cls: unknown): DeploymentDefinition | undefined {
  return typeof cls === 'function' ? definitions.get(cls) : undefined;
}

/** The definition registered under `name` by a module loaded in this process. */
export function findRegisteredDeployment(name: string): DeploymentDefinition | undefined {
  return registry.get(name);
}

function toPath(p: string): string {
  return p.startsWith('file:') ? fileURLToPath(p) : path.resolve(p);
}

const coreDir = path.dirname(fileURLToPath(import.meta.url));

/** The first stack frame outside this package: the module whose class is being decorated. */
function callerModule(): string {
  const frames = (new Error().stack ?? '').split('\n').slice(1);
  for (const frame of frames) {
    const m = /\(?((?:file:\/\/)?\/[^():]+|[A-Za-z]:\\[^():]+):\d+:\d+\)?\s*$/.exec(frame);
    if (!m) continue;
    const file = toPath(m[1]!);
    if (file.startsWith(coreDir + path.sep) || file.includes(`${path.sep}node_modules${path.sep}`)) continue;
    return file;
  }
  return '';
}
