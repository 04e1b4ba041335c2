/**
 * Application graphs: `Cls.bind(...args)` makes an Application node; Applications nested in the
 * arguments (in arrays and plain objects too) become DeploymentHandles in the replica's constructor.
 * `buildGraph` flattens a root node into the deployments to run, with handle descriptors in their args.
 */
import { DeploymentConfigError } from './errors.js';
import { handleDescriptor, type DeploymentHandle } from './handle.js';
import type { DeploymentDefinition, DeploymentOptions } from './contract/deployment-options.js';

export class Application<T = unknown> {
  /** Type-only marker of the deployment class. */
  declare readonly __type?: T;

  constructor(
    readonly definition: DeploymentDefinition,
    readonly args: readonly unknown[],
    readonly overrides: DeploymentOptions = {},
  ) {}

  /** A copy with options overridden at bind time (validated when the app starts). */
  options(overrides: DeploymentOptions): Application<T> {
    return new Application<T>(this.definition, this.args, {
      ...this.overrides,
      ...overrides,
      resources: { ...this.overrides.resources, ...overrides.resources },
    });
  }
}

/** What `serve run FILE:EXPORT` accepts: an Application, or a builder taking `key=value` arguments. */
export type AppBuilder<A = Record<string, string>> = (args: A) => Application | Promise<Application>;

/** Constructor argument types as written at bind time: handles are passed as bound Applications. */
export type Bindable<P> =
  P extends DeploymentHandle<infer T>
    ? Application<T>
    : P extends readonly unknown[]
      ? { [K in keyof P]: Bindable<P[K]> }
      : P extends (...a: any[]) => any
        ? P
        : P extends object
          ? { [K in keyof P]: Bindable<P[K]> }
          : P;

declare global {
  // Types `Cls.bind(...)` on decorated classes (the decorator installs the static method at run time).
  interface NewableFunction {
    bind<C extends abstract new (...args: any) => any>(
      this: C,
      ...args: Bindable<ConstructorParameters<C>>
    ): Application<InstanceType<C>>;
  }
}

export function isApplication(value: unknown): value is Application {
  return value instanceof Application;
}

/** One deployment of a flattened graph. */
export interface GraphNode {
  /** Unique within the app; a class bound twice with different arguments gets `Name_1`, `Name_2`. */
  name: string;
  definition: DeploymentDefinition;
  overrides: DeploymentOptions;
  /** Constructor arguments with nested Applications replaced by handle descriptors. */
  args: unknown[];
}

export interface AppGraph {
  ingress: string;
  /** Callers before callees; the ingress first. */
  nodes: GraphNode[];
}

export function buildGraph(app: string, root: Application): AppGraph {
  if (!isApplication(root)) {
    throw new DeploymentConfigError(
      `application '${app}': expected Cls.bind(...) (an Application), got ${describe(root)}`,
    );
  }
  const names = new Map<Application, string>();
  const nodes: GraphNode[] = [];
  const used = new Set<string>();
  const visit = (node: Application): string => {
    const known = names.get(node);
    if (known) return known;
    const base = node.overrides.name ?? node.definition.name;
    let name = base;
    for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    names.set(node, name);
    const graphNode: GraphNode = { name, definition: node.definition, overrides: node.overrides, args: [] };
    graphNode.args = node.args.map((a) =>
      replaceApplications(a, (child) => handleDescriptor({ app, deployment: visit(child) })),
    );
    nodes.push(graphNode);
    return name;
  };
  const ingress = visit(root);
  // Post-order reversed: every caller comes before the deployments it calls (shutdown stops them in this order).
  return { ingress, nodes: nodes.reverse() };
}

function replaceApplications(value: unknown, replace: (a: Application) => unknown): unknown {
  if (isApplication(value)) return replace(value);
  if (Array.isArray(value)) return value.map((v) => replaceApplications(v, replace));
  if (typeof value === 'object' && value !== null) {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) return value;
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceApplications(v, replace)]));
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'function')
    return `the function ${value.name || '(anonymous)'} (did you forget @deployment or .bind()?)`;
  return value === null ? 'null' : typeof value;
}
