/**
 * `serve run FILE:EXPORT [key=value ...]`: load the application, start the runtime and both proxies,
 * print the banner, then block until SIGINT/SIGTERM or POST /-/shutdown, and stop gracefully:
 * refuse new requests, let in-flight ones finish (up to --drain-timeout), stop replicas, exit 0.
 * With --cluster-port the instance is also a cluster head (as `serve start --head` makes one).
 */
import type { Application } from '../application.js';
import { loadServeConfig, type ServeConfig } from '../config.js';
import { Ingress } from '../ingress/ingress.js';
import { grpcServicesOf, type GrpcServiceBinding } from '../ingress/grpc-services.js';
import { declaredKeysOf } from '../ingress/declared-keys.js';
import type { IngressKeys } from '../ingress/ingress-keys.js';
import { ingressSecurity, type IngressCliOptions } from './ingress-options.js';
import { loadApplication, parseAppSpec, parseKeyValues } from './app-loader.js';
import { renderBanner } from './banner.js';
import { CliError, causeOf } from './cli-error.js';
import { startRuntime, type RuntimeInstance, type StartRuntimeOptions } from './runtime-adapter.js';
import { acceptDeploys, redeployFromCheckpoint } from './deploy-command.js';
import { clusterHeadSecurity, type ClusterHeadCliOptions } from './cluster-options.js';

export interface RunOptions extends ClusterHeadCliOptions, IngressCliOptions {
  host?: string;
  port?: number;
  grpcPort?: number;
  /** commander's --no-grpc. */
  grpc?: boolean;
  config?: string;
  name?: string;
  routePrefix?: string;
  requestTimeout?: number;
  bodyLimit?: number;
  drainTimeout?: number;
  /** Makes the instance a cluster head on this port. */
  clusterPort?: number;
  clusterHost?: string;
}

const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

export async function runCommand(target: string | undefined, words: string[], opts: RunOptions): Promise<void> {
  if (!target)
    throw new CliError(
      'serve run needs FILE:EXPORT.',
      'e.g. `serve run examples/default.ts:app` (see `serve run --help`).',
      2,
    );
  const config = opts.config ? loadConfig(opts.config) : undefined;
  const spec = parseAppSpec(target);
  const app = await loadApplication(spec, parseKeyValues(words));
  const name = opts.name ?? config?.applications[0]?.name ?? (spec.exportName === 'app' ? 'default' : spec.exportName);
  const routePrefix = opts.routePrefix ?? config?.applications.find((a) => a.name === name)?.routePrefix ?? '/';
  const grpcServices = opts.grpc === false ? [] : declaredServices(spec.given, name, app);
  const declaredKeys = appKeys(spec.given, name, app);
  const cluster =
    opts.clusterPort === undefined
      ? undefined
      : {
          port: opts.clusterPort,
          host: opts.clusterHost ?? opts.host,
          log: (line: string) => process.stdout.write(`[flotilla head] ${line}\n`),
          ...clusterHeadSecurity(opts),
        };
  const instance = await startOrExplain(spec.given, app, { name, routePrefix, config, cluster });
  if (instance.cluster) {
    acceptDeploys(instance);
    await redeployFromCheckpoint(instance, (line) => process.stdout.write(`[flotilla head] ${line}\n`));
  }
  await serveUntilStopped(instance, opts, config, grpcServices, target, declaredKeys);
}

/**
 * Starts both proxies in front of `instance`, prints the banner and installs the signal handlers:
 * the process then serves until SIGINT/SIGTERM or POST /-/shutdown (serve run, serve start).
 */
export async function serveUntilStopped(
  instance: RuntimeInstance,
  opts: RunOptions,
  config: ServeConfig | undefined,
  grpcServices: GrpcServiceBinding[],
  source: string,
  declaredKeys: IngressKeys = {},
): Promise<Ingress> {
  let ingress!: Ingress;
  let stopping: Promise<void> | undefined;
  const stop = (why: string): Promise<void> =>
    (stopping ??= gracefulStop(why, ingress, instance, opts.drainTimeout ?? DEFAULT_DRAIN_TIMEOUT_MS));
  try {
    const security = ingressSecurity(opts, config, declaredKeys);
    ingress = await Ingress.start(instance, {
      http: {
        ...config?.httpOptions,
        host: opts.host ?? config?.httpOptions?.host,
        port: opts.port ?? config?.httpOptions?.port,
        requestTimeoutMs: opts.requestTimeout ?? config?.httpOptions?.requestTimeoutMs,
        bodyLimitBytes: opts.bodyLimit ?? config?.httpOptions?.bodyLimitBytes,
        maxConnections: opts.maxConnections ?? config?.httpOptions?.maxConnections,
        tls: security.httpTls,
        onShutdown: () => void stop('POST /-/shutdown'),
      },
      grpc:
        opts.grpc === false
          ? false
          : {
              ...config?.grpcOptions,
              host: opts.host ?? config?.httpOptions?.host,
              port: opts.grpcPort ?? config?.grpcOptions?.port,
              tls: security.grpcTls,
            },
      keys: security.keys,
      grpcServices,
      events: instance.events,
    });
  } catch (err) {
    await instance.shutdown().catch(() => {});
    if (err instanceof CliError) throw err;
    throw new CliError(
      `Could not start the proxies: ${causeOf(err)}`,
      'If a port is taken, pick others with --port / --grpc-port (or stop the other instance with `serve shutdown`); ' +
        'if a declared gRPC service failed to load, fix its protoPath or service name; ' +
        'if a TLS file or a key is named above, fix it (keys: at least 8 characters, no spaces).',
    );
  }
  instance.endpoints.http = ingress.http?.url;
  instance.endpoints.grpc = ingress.grpc?.address;
  process.stdout.write(
    renderBanner({ http: ingress.http?.url, grpc: ingress.grpc?.address, routes: instance.routes(), source }),
  );
  if (instance.cluster) {
    process.stdout.write(
      `Cluster head: agents join with \`serve agent --address ${instance.cluster.address}\`; ` +
        `deploy with \`serve deploy FILE:EXPORT --address ${instance.cluster.address}\`\n`,
    );
  }
  // Returning leaves the listeners and replicas holding the process open until stop() exits it.
  installSignalHandlers(stop);
  return ingress;
}

export function loadConfig(file: string): ServeConfig {
  try {
    return loadServeConfig(file);
  } catch (err) {
    throw new CliError(
      `Bad config file: ${causeOf(err)}`,
      'Fix the option named above; the format is in README.md ("Config file").',
    );
  }
}

function appKeys(file: string, name: string, app: Application): IngressKeys {
  try {
    return declaredKeysOf(name, app);
  } catch (err) {
    throw new CliError(
      `${file}: ${causeOf(err)}`,
      'Fix the keys given to the application (at least 8 characters each, no spaces).',
    );
  }
}

function declaredServices(file: string, name: string, app: Application): GrpcServiceBinding[] {
  try {
    return grpcServicesOf(name, app);
  } catch (err) {
    throw new CliError(
      `${file}: ${causeOf(err)}`,
      'Declare `static grpcServices = [{ protoPath, service, methods? }]` on the deployment class.',
    );
  }
}

async function startOrExplain(file: string, app: Application, opts: StartRuntimeOptions): Promise<RuntimeInstance> {
  try {
    return await startRuntime(app, opts);
  } catch (err) {
    const deployment = (err as { data?: { deployment?: unknown } }).data?.deployment;
    const where = typeof deployment === 'string' ? `deployment '${deployment}' in ${file}` : file;
    throw new CliError(
      `${where} failed to start: ${causeOf(err)}`,
      'Fix the constructor or the option named above, then run again; `serve status` shows causes of running instances.',
    );
  }
}

function installSignalHandlers(stop: (why: string) => Promise<void>): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`${signal} again: exiting without waiting for in-flight requests.\n`);
      process.exit(130);
    }
    void stop(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

async function gracefulStop(
  why: string,
  ingress: Ingress,
  instance: RuntimeInstance,
  drainTimeoutMs: number,
): Promise<void> {
  process.stdout.write(
    `\n${why}: draining (new requests get 503; in-flight ones have ${drainTimeoutMs / 1000}s to finish)...\n`,
  );
  let code = 0;
  try {
    const drained = await ingress.drain(drainTimeoutMs);
    if (!drained) process.stderr.write('Some requests were still running at the drain timeout; they are being cut.\n');
    await instance.shutdown();
    await ingress.close();
    process.stdout.write('Flotilla stopped.\n');
  } catch (err) {
    process.stderr.write(`Shutdown did not finish cleanly: ${causeOf(err)}\n`);
    code = 1;
  }
  // Worker threads or sockets of user code may keep the loop alive; the CLI's job is done.
  process.exit(code);
}
