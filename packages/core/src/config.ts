/**
 * Deployment options: validation with clear errors, defaults, and merging of a serve config file.
 *
 * The config file follows Ray Serve's serve config (YAML or JSON; snake_case or camelCase keys):
 *
 *   http_options: { host: 127.0.0.1, port: 8000, max_connections: 1024, body_timeout_ms: 30000, ... }
 *   grpc_options: { port: 9000 }
 *   tls: { cert: server.pem, key: server-key.pem }          # both proxies (or http_options.tls / grpc_options.tls)
 *   auth: { api_key_file: keys.txt, admin_key_file: admin.txt, metrics_key_file: metrics.txt }
 *   applications:
 *     - name: default
 *       route_prefix: /
 *       import_path: examples/summarizer.ts:app
 *       args: { small: ... }
 *       deployments:
 *         - name: Small
 *           num_replicas: 2
 *           user_config: { ... }
 *
 * Precedence, lowest first: @deployment options, `.options()` at bind time, the config file.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { DeploymentConfigError } from './errors.js';
import { namedPolicy } from './controller/autoscaling-policy.js';
import type { DeploymentOptions, ResourceOptions } from './contract/deployment-options.js';
import type { AutoscalingOptions } from './contract/autoscaling.js';
import type { ResolvedAutoscaling } from './contract/autoscaling.js';
import type { ResolvedDeploymentOptions } from './contract/deployment-options.js';

export interface DeploymentConfigEntry extends DeploymentOptions {
  name: string;
}

export interface ApplicationConfig {
  name: string;
  routePrefix?: string;
  /** FILE:EXPORT, for the CLI. */
  importPath?: string;
  /** Arguments for an application builder. */
  args?: Record<string, unknown>;
  deployments?: DeploymentConfigEntry[];
}

/** A certificate and key, as paths of PEM files (relative to the working directory). */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** The HTTP proxy's options a config file may set (see HttpProxyOptions and HttpConnectionLimits). */
export interface HttpConfigOptions {
  host?: string;
  port?: number;
  tls?: TlsFiles;
  requestTimeoutMs?: number;
  bodyLimitBytes?: number;
  headersTimeoutMs?: number;
  bodyTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  maxConnections?: number;
  maxRequestsPerSocket?: number;
}

export interface GrpcConfigOptions {
  port?: number;
  tls?: TlsFiles;
  maxConnectionIdleMs?: number;
}

/** Key files for both proxies (one key per line, '#' comments; see ingress/ingress-keys.ts). */
export interface AuthConfig {
  apiKeyFile?: string;
  adminKeyFile?: string;
  metricsKeyFile?: string;
}

export interface ServeConfig {
  httpOptions?: HttpConfigOptions;
  grpcOptions?: GrpcConfigOptions;
  /** TLS for both proxies (http_options.tls / grpc_options.tls win for their own). */
  tls?: TlsFiles;
  auth?: AuthConfig;
  /** Where a head keeps its controller state: `etcd://HOST:PORT[,...][/NAME]` (see controller/store/state-url.ts). */
  state?: string;
  applications: ApplicationConfig[];
}

const HTTP_CONFIG_NUMBERS = [
  'port',
  'requestTimeoutMs',
  'bodyLimitBytes',
  'headersTimeoutMs',
  'bodyTimeoutMs',
  'keepAliveTimeoutMs',
  'maxConnections',
  'maxRequestsPerSocket',
] as const;
const GRPC_CONFIG_NUMBERS = ['port', 'maxConnectionIdleMs'] as const;

const OPTION_KEYS = new Set([
  'name',
  'numReplicas',
  'maxOngoingRequests',
  'maxQueuedRequests',
  'routing',
  'autoscaling',
  'resources',
  'placement',
  'healthCheckPeriodS',
  'healthCheckTimeoutS',
  'healthCheckFailureThreshold',
  'gracefulShutdownTimeoutS',
  'maxConstructorRetries',
  'userConfig',
  'module',
  'pool',
  'cost',
]);
const AUTOSCALING_KEYS = [
  'minReplicas',
  'maxReplicas',
  'initialReplicas',
  'targetOngoingRequests',
  'upscaleDelayS',
  'downscaleDelayS',
  'metricsIntervalS',
  'lookBackPeriodS',
  'upscalingFactor',
  'downscalingFactor',
  'policy',
] as const;
const RESOURCE_KEYS = ['cpus', 'gpus', 'memoryMb'] as const;
const COST_KEYS = ['perReplicaHour', 'per1kPromptTokens', 'per1kCompletionTokens'] as const;

function fail(where: string, message: string): never {
  throw new DeploymentConfigError(`${where}: ${message}`, { where });
}

function checkNumber(
  where: string,
  key: string,
  v: unknown,
  opts: { int?: boolean; min?: number; allowMinusOne?: boolean },
): void {
  if (v === undefined) return;
  if (opts.allowMinusOne && v === -1) return;
  const ok = typeof v === 'number' && Number.isFinite(v) && (!opts.int || Number.isInteger(v)) && v >= (opts.min ?? 0);
  if (!ok) {
    const kind = opts.int ? 'an integer' : 'a number';
    fail(
      where,
      `${key} must be ${kind} >= ${opts.min ?? 0}${opts.allowMinusOne ? ' or -1' : ''}, got ${JSON.stringify(v)}`,
    );
  }
}

function checkKeys(where: string, obj: object, allowed: Iterable<string>, what: string): void {
  const set = new Set(allowed);
  for (const key of Object.keys(obj))
    if (!set.has(key)) fail(where, `unknown ${what} '${key}' (known: ${[...set].join(', ')})`);
}

/** Throws DeploymentConfigError naming `where` and the option at fault. */
export function validateDeploymentOptions(o: DeploymentOptions, where: string): void {
  if (typeof o !== 'object' || o === null) fail(where, 'options must be an object');
  checkKeys(where, o, OPTION_KEYS, 'option');
  if (o.name !== undefined && (typeof o.name !== 'string' || !/^[A-Za-z_][\w.-]*$/.test(o.name))) {
    fail(where, `name must be a non-empty identifier-like string, got ${JSON.stringify(o.name)}`);
  }
  if (o.numReplicas !== 'auto') checkNumber(where, 'numReplicas', o.numReplicas, { int: true });
  checkNumber(where, 'maxOngoingRequests', o.maxOngoingRequests, { int: true, min: 1 });
  checkNumber(where, 'maxQueuedRequests', o.maxQueuedRequests, { int: true, allowMinusOne: true });
  if (o.routing !== undefined && o.routing !== 'pow2' && o.routing !== 'prefix-aware') {
    fail(where, `routing must be 'pow2' or 'prefix-aware', got ${JSON.stringify(o.routing)}`);
  }
  for (const key of ['healthCheckPeriodS', 'healthCheckTimeoutS', 'gracefulShutdownTimeoutS'] as const) {
    checkNumber(where, key, o[key], {});
  }
  checkNumber(where, 'healthCheckFailureThreshold', o.healthCheckFailureThreshold, { int: true, min: 1 });
  checkNumber(where, 'maxConstructorRetries', o.maxConstructorRetries, { int: true, min: 1 });
  if (o.placement !== undefined && o.placement !== 'thread' && o.placement !== 'process') {
    fail(where, `placement must be 'thread' or 'process', got ${JSON.stringify(o.placement)}`);
  }
  if (o.resources !== undefined) validateResources(o.resources, where);
  if (o.autoscaling !== undefined) validateAutoscaling(o.autoscaling, where);
  if (o.pool !== undefined) {
    if (typeof o.pool !== 'object' || o.pool === null) fail(where, 'pool must be an object');
    checkKeys(where, o.pool, ['minThreads', 'maxThreads', 'idleTimeoutMs'], 'pool option');
    checkNumber(where, 'pool.minThreads', o.pool.minThreads, { int: true });
    checkNumber(where, 'pool.maxThreads', o.pool.maxThreads, { int: true, min: 1 });
    checkNumber(where, 'pool.idleTimeoutMs', o.pool.idleTimeoutMs, {});
  }
  if (o.cost !== undefined) {
    if (typeof o.cost !== 'object' || o.cost === null || Array.isArray(o.cost)) fail(where, 'cost must be an object');
    checkKeys(where, o.cost, COST_KEYS, 'cost option');
    for (const key of COST_KEYS) checkNumber(where, `cost.${key}`, o.cost[key], {});
  }
}

function validateResources(r: ResourceOptions, where: string): void {
  if (typeof r !== 'object' || r === null) fail(where, 'resources must be an object');
  checkKeys(where, r, RESOURCE_KEYS, 'resource');
  checkNumber(where, 'resources.cpus', r.cpus, {});
  checkNumber(where, 'resources.gpus', r.gpus, {});
  checkNumber(where, 'resources.memoryMb', r.memoryMb, {});
  if (r.gpus !== undefined && r.gpus > 1 && !Number.isInteger(r.gpus)) {
    fail(where, `resources.gpus above 1 must be a whole number, got ${r.gpus}`);
  }
}

function validateAutoscaling(a: AutoscalingOptions, where: string): void {
  if (typeof a !== 'object' || a === null) fail(where, 'autoscaling must be an object');
  checkKeys(where, a, AUTOSCALING_KEYS, 'autoscaling option');
  for (const key of ['minReplicas', 'maxReplicas', 'initialReplicas'] as const) {
    checkNumber(where, `autoscaling.${key}`, a[key], { int: true });
  }
  for (const key of [
    'targetOngoingRequests',
    'upscaleDelayS',
    'downscaleDelayS',
    'metricsIntervalS',
    'lookBackPeriodS',
    'upscalingFactor',
    'downscalingFactor',
  ] as const) {
    checkNumber(where, `autoscaling.${key}`, a[key], {});
  }
  if (a.policy !== undefined && typeof a.policy !== 'function' && !namedPolicy(String(a.policy))) {
    fail(where, `autoscaling.policy must be a function, 'default' or 'llm', got ${JSON.stringify(a.policy)}`);
  }
  if (a.metricsIntervalS === 0) fail(where, 'autoscaling.metricsIntervalS must be > 0');
  if (a.targetOngoingRequests === 0) fail(where, 'autoscaling.targetOngoingRequests must be > 0');
  if (a.minReplicas !== undefined && a.maxReplicas !== undefined && a.minReplicas > a.maxReplicas) {
    fail(where, `autoscaling.minReplicas (${a.minReplicas}) exceeds maxReplicas (${a.maxReplicas})`);
  }
}

/** Merges option layers (lowest precedence first), validates the result and fills defaults. */
export function resolveDeploymentOptions(
  name: string,
  layers: DeploymentOptions[],
  where: string,
): ResolvedDeploymentOptions {
  const o: DeploymentOptions = {};
  for (const layer of layers) {
    validateDeploymentOptions(layer, where);
    Object.assign(o, layer, {
      resources: { ...o.resources, ...layer.resources },
      cost: layer.cost || o.cost ? { ...o.cost, ...layer.cost } : undefined,
      autoscaling: layer.autoscaling || o.autoscaling ? { ...o.autoscaling, ...layer.autoscaling } : undefined,
    });
  }
  const auto = o.numReplicas === 'auto' || o.autoscaling !== undefined;
  const autoscaling = auto ? resolveAutoscaling(o.autoscaling ?? {}, o.numReplicas === 'auto', where) : undefined;
  const numReplicas = o.numReplicas ?? (autoscaling ? 'auto' : 1);
  const maxOngoingRequests = o.maxOngoingRequests ?? 5;
  const startingReplicas = typeof numReplicas === 'number' ? numReplicas : (autoscaling?.initialReplicas ?? 1);
  return {
    name,
    numReplicas,
    maxOngoingRequests,
    maxQueuedRequests: o.maxQueuedRequests ?? defaultMaxQueuedRequests(maxOngoingRequests, startingReplicas),
    routing: o.routing ?? 'pow2',
    autoscaling,
    resources: { cpus: o.resources?.cpus ?? 0, gpus: o.resources?.gpus ?? 0, memoryMb: o.resources?.memoryMb ?? 0 },
    placement: o.placement ?? 'thread',
    healthCheckPeriodS: o.healthCheckPeriodS ?? 10,
    healthCheckTimeoutS: o.healthCheckTimeoutS ?? 30,
    healthCheckFailureThreshold: o.healthCheckFailureThreshold ?? 3,
    gracefulShutdownTimeoutS: o.gracefulShutdownTimeoutS ?? 20,
    maxConstructorRetries: o.maxConstructorRetries ?? 3,
    userConfig: o.userConfig,
    ...(o.cost
      ? {
          cost: {
            perReplicaHour: o.cost.perReplicaHour ?? 0,
            per1kPromptTokens: o.cost.per1kPromptTokens ?? 0,
            per1kCompletionTokens: o.cost.per1kCompletionTokens ?? 0,
          },
        }
      : {}),
  };
}

/** At least this many requests may queue in each caller by default (see defaultMaxQueuedRequests). */
export const MIN_DEFAULT_QUEUED_REQUESTS = 100;

/**
 * The default maxQueuedRequests: twice what the deployment runs at once with the replicas it starts with
 * (2 x maxOngoingRequests x replicas), and never under 100. Twice the capacity absorbs a burst (the queue
 * drains in about two service times), while a sustained overload is refused at once with 503 + Retry-After
 * (HTTP) or RESOURCE_EXHAUSTED + retry-after (gRPC) instead of growing a queue whose requests would time
 * out anyway. The floor of 100 keeps room for a burst at a deployment scaled to zero or with one small
 * replica (and for the autoscaler to see the queue). Fixed at deploy time: it does not follow autoscaling.
 */
export function defaultMaxQueuedRequests(maxOngoingRequests: number, replicas: number): number {
  return Math.max(MIN_DEFAULT_QUEUED_REQUESTS, 2 * maxOngoingRequests * Math.max(1, replicas));
}

function resolveAutoscaling(a: AutoscalingOptions, isAuto: boolean, where: string): ResolvedAutoscaling {
  const minReplicas = a.minReplicas ?? 1;
  const maxReplicas = a.maxReplicas ?? (isAuto ? Math.max(100, minReplicas) : Math.max(1, minReplicas));
  const initialReplicas = a.initialReplicas ?? minReplicas;
  if (minReplicas > maxReplicas)
    fail(where, `autoscaling.minReplicas (${minReplicas}) exceeds maxReplicas (${maxReplicas})`);
  if (initialReplicas < minReplicas || initialReplicas > maxReplicas) {
    fail(where, `autoscaling.initialReplicas (${initialReplicas}) must lie in [${minReplicas}, ${maxReplicas}]`);
  }
  return {
    minReplicas,
    maxReplicas,
    initialReplicas,
    targetOngoingRequests: a.targetOngoingRequests ?? 2,
    upscaleDelayS: a.upscaleDelayS ?? 30,
    downscaleDelayS: a.downscaleDelayS ?? 600,
    metricsIntervalS: a.metricsIntervalS ?? 1,
    lookBackPeriodS: a.lookBackPeriodS ?? 5,
    upscalingFactor: a.upscalingFactor ?? 1,
    downscalingFactor: a.downscalingFactor ?? 1,
    policy: typeof a.policy === 'string' ? namedPolicy(a.policy) : a.policy,
  };
}

/** snake_case → camelCase, recursively, except inside user_config and args (user data). */
function camelize(value: unknown, key = ''): unknown {
  if (key === 'userConfig' || key === 'args') return value;
  if (Array.isArray(value)) return value.map((v) => camelize(v));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const ck = k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
    out[ck] = camelize(v, ck);
  }
  return out;
}

/** Parses a serve config (YAML is a superset of JSON) and validates every deployment entry. */
export function parseServeConfig(text: string, source = 'config'): ServeConfig {
  let raw: unknown;
  try {
    // Loaded on first use: every replica imports this module (for validation) and never parses YAML.
    const { parse } = createRequire(import.meta.url)('yaml') as typeof import('yaml');
    raw = parse(text);
  } catch (err) {
    fail(source, `not valid YAML or JSON: ${(err as Error).message}`);
  }
  const config = camelize(raw) as ServeConfig;
  if (typeof config !== 'object' || config === null || !Array.isArray(config.applications)) {
    fail(source, "expected an object with an 'applications' list");
  }
  validateProxyOptions(config, source);
  config.applications.forEach((app, i) => {
    if (typeof app?.name !== 'string') fail(`${source}: applications[${i}]`, 'name is required');
    for (const [j, dep] of (app.deployments ?? []).entries()) {
      const where = `${source}: applications[${i}] (${app.name}) deployments[${j}]`;
      if (typeof dep?.name !== 'string') fail(where, 'name is required');
      const { name: _name, ...rest } = dep;
      validateDeploymentOptions(rest, `${where} (${dep.name})`);
    }
  });
  return config;
}

/** The proxy sections: known keys, numbers where numbers go, tls with both files, auth with file paths. */
function validateProxyOptions(config: ServeConfig, source: string): void {
  const section = (name: string, value: unknown): value is Record<string, unknown> => {
    if (value === undefined) return false;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(source, `${name} must be an object`);
    return true;
  };
  const tls = (where: string, value: unknown) => {
    if (!section(where, value)) return;
    checkKeys(source, value, ['cert', 'key'], `${where} key`);
    for (const k of ['cert', 'key'])
      if (typeof value[k] !== 'string' || value[k] === '') fail(source, `${where}.${k} must be the path of a PEM file`);
  };
  const http = config.httpOptions;
  if (section('http_options', http)) {
    checkKeys(source, http, ['host', 'tls', ...HTTP_CONFIG_NUMBERS], 'http_options key');
    if (http.host !== undefined && typeof http.host !== 'string') fail(source, 'http_options.host must be a string');
    for (const k of HTTP_CONFIG_NUMBERS) checkNumber(source, `http_options.${k}`, http[k], { int: true });
    tls('http_options.tls', http.tls);
  }
  const grpc = config.grpcOptions;
  if (section('grpc_options', grpc)) {
    checkKeys(source, grpc, ['tls', ...GRPC_CONFIG_NUMBERS], 'grpc_options key');
    for (const k of GRPC_CONFIG_NUMBERS) checkNumber(source, `grpc_options.${k}`, grpc[k], { int: true });
    tls('grpc_options.tls', grpc.tls);
  }
  tls('tls', config.tls);
  if (config.state !== undefined && (typeof config.state !== 'string' || config.state === ''))
    fail(source, 'state must be a URL such as etcd://127.0.0.1:2379');
  if (section('auth', config.auth)) {
    const auth = config.auth as Record<string, unknown>;
    checkKeys(source, auth, ['apiKeyFile', 'adminKeyFile', 'metricsKeyFile'], 'auth key');
    for (const [k, v] of Object.entries(auth))
      if (typeof v !== 'string' || v === '') fail(source, `auth.${k} must be the path of a key file`);
  }
}

export function loadServeConfig(file: string): ServeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    fail(file, `cannot read: ${(err as Error).message}`);
  }
  return parseServeConfig(text, file);
}

/** The config file's overrides for one deployment of one application, if any. */
export function configOverrides(config: ServeConfig | undefined, app: string, deployment: string): DeploymentOptions {
  const entry = config?.applications.find((a) => a.name === app)?.deployments?.find((d) => d.name === deployment);
  if (!entry) return {};
  const { name: _name, ...rest } = entry;
  return rest;
}
