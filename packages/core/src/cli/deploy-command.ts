/**
 * `serve deploy FILE:EXPORT [key=value ...] --address HEAD:PORT`: add an application to a running head
 * (`serve start --head`, or `serve run … --cluster-port`), or update the one of the same name in place
 * (rolling update, reconfigure), leaving the others running. The client sends the module's absolute
 * path and the config's text over the cluster port (Deploy in protos/cluster.proto); the head loads the
 * module from that path, so the code must be at the same path there, as for agents. The call carries
 * the cluster token (FLOTILLA_CLUSTER_TOKEN, --token-file, or the head machine's ~/.flotilla/cluster-token)
 * and uses TLS when --tls/--tls-ca is given (cluster-options.ts).
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { parseServeConfig } from '../config.js';
import type { DeployReply, DeployRequest } from '../cluster/cluster-proto.js';
import { clusterClient, explainCallError, missingToken } from '../cluster/cluster-client.js';
import { findToken } from '../cluster/cluster-token.js';
import { loadApplication, parseAppSpec, parseKeyValues } from './app-loader.js';
import { CliError, causeOf } from './cli-error.js';
import { clusterClientAuth, type ClusterClientCliOptions } from './cluster-options.js';
import type { RuntimeInstance } from './runtime-adapter.js';

export interface DeployCommandOptions extends ClusterClientCliOptions {
  address?: string;
  name?: string;
  routePrefix?: string;
  config?: string;
  /** Seconds to wait for the application to be RUNNING. */
  timeout?: number;
}

const DEFAULT_TIMEOUT_S = 120;

export async function deployCommand(
  target: string | undefined,
  words: string[],
  opts: DeployCommandOptions,
): Promise<string> {
  if (!target)
    throw new CliError(
      'serve deploy needs FILE:EXPORT.',
      'e.g. `serve deploy examples/default.ts:app --address 127.0.0.1:9100`.',
      2,
    );
  if (!opts.address)
    throw new CliError(
      'serve deploy needs --address HOST:PORT of the head.',
      'Start one with `serve start --head`; its banner names the address.',
      2,
    );
  const spec = parseAppSpec(target);
  let configText = '';
  if (opts.config) {
    try {
      configText = readFileSync(opts.config, 'utf8');
      parseServeConfig(configText, opts.config);
    } catch (err) {
      throw new CliError(
        `Bad config file: ${causeOf(err)}`,
        'Fix the option named above; the format is in README.md ("Config file").',
      );
    }
  }
  const timeoutS = opts.timeout ?? DEFAULT_TIMEOUT_S;
  const request: DeployRequest = {
    module_path: spec.file,
    export_name: spec.exportName,
    args: parseKeyValues(words),
    name: opts.name ?? '',
    route_prefix: opts.routePrefix ?? '',
    config_text: configText,
    config_source: opts.config ?? '',
    timeout_s: timeoutS,
  };
  const auth = clusterClientAuth(opts);
  let token: string | undefined;
  try {
    // None found still dials: an unreachable head is reported as such, a reachable one refuses the call.
    token = findToken(auth)?.token;
  } catch (err) {
    throw new CliError(`Cannot deploy: ${causeOf(err)}`, 'Fix the token file or FLOTILLA_CLUSTER_TOKEN.');
  }
  const client = clusterClient(opts.address, () => token, auth.tls);
  try {
    const reply = await new Promise<DeployReply>((resolve, reject) =>
      client.Deploy(
        request,
        { deadline: Date.now() + (timeoutS + 10) * 1000 },
        (err: grpc.ServiceError | null, r: DeployReply) => (err ? reject(err) : resolve(r)),
      ),
    );
    const where = reply.http ? ` at ${reply.http}${reply.route_prefix === '/' ? '' : reply.route_prefix}` : '';
    return `Deployed application '${reply.name}' (route ${reply.route_prefix})${where}.\n`;
  } catch (err) {
    const e = err as grpc.ServiceError;
    if (e.code === grpc.status.UNAUTHENTICATED) {
      throw new CliError(
        `The head at ${opts.address} refused the deploy: ${token === undefined ? missingToken(opts.address).message : explainCallError(e, auth.tls !== undefined)}`,
        'Pass the token the head uses: FLOTILLA_CLUSTER_TOKEN or --token-file (on the head machine: ~/.flotilla/cluster-token).',
      );
    }
    if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED) {
      throw new CliError(
        `Cannot reach the head at ${opts.address}: ${explainCallError(e, auth.tls !== undefined)}`,
        'Start one with `serve start --head` (or `serve run … --cluster-port`), and pass its cluster address.',
      );
    }
    const [message, hint] = (e.details || e.message).split('\n  next: ');
    throw new CliError(
      `The head did not deploy ${target}: ${message}`,
      hint ?? 'Fix the cause above and deploy again; `serve status` shows the head.',
    );
  } finally {
    client.close();
  }
}

/** Makes a head accept `serve deploy`: load the module by the path given, then add or update the app. */
export function acceptDeploys(instance: RuntimeInstance): void {
  if (!instance.cluster?.frontend) return;
  instance.cluster.frontend.deploy = (req) => deployOnHead(instance, req);
}

/**
 * Deploys again what was deployed onto this head when its previous controller died (its checkpoint),
 * so that a restarted `serve start --head` serves the same applications and re-adopts their replicas.
 */
export async function redeployFromCheckpoint(instance: RuntimeInstance, log: (line: string) => void): Promise<void> {
  for (const { name, source } of instance.restorableSources()) {
    try {
      const reply = await deployOnHead(instance, source as DeployRequest);
      log(`restored application '${reply.name}' (route ${reply.route_prefix}) from the checkpoint`);
    } catch (err) {
      log(`could not restore application '${name}' from the checkpoint: ${causeOf(err)}`);
    }
  }
}

/**
 * A newly elected head (state in etcd) deploys again the applications of the last leader's state. Resolves
 * once every one is in the controller (its deployments expect the replicas the agents kept), without
 * waiting for them to run: they run once the agents, which wait for this, register and are re-adopted.
 */
export async function restoreFromState(instance: RuntimeInstance, log: (line: string) => void): Promise<void> {
  for (const { name, source } of instance.restorableSources()) {
    const req = source as DeployRequest;
    try {
      const { app, name: appName, routePrefix, config } = await loadDeployRequest(req);
      // deploy() adds the application synchronously and then waits for it to run.
      instance
        .deploy([{ name: appName, routePrefix, app }], {
          config,
          timeoutS: req.timeout_s || DEFAULT_TIMEOUT_S,
          source: { ...req, args: { ...req.args } },
        })
        .then(
          () => log(`restored application '${appName}' (route ${routePrefix}): RUNNING`),
          (err) => log(`restored application '${appName}' is not running: ${causeOf(err)}`),
        );
    } catch (err) {
      log(`could not restore application '${name}' from the state: ${causeOf(err)}`);
    }
  }
}

async function loadDeployRequest(req: DeployRequest) {
  const spec = { file: req.module_path, given: req.module_path, exportName: req.export_name || 'app' };
  const app = await loadApplication(spec, req.args);
  const config = req.config_text ? parseServeConfig(req.config_text, req.config_source || 'config') : undefined;
  const name = req.name || config?.applications[0]?.name || (spec.exportName === 'app' ? 'default' : spec.exportName);
  const routePrefix = req.route_prefix || config?.applications.find((a) => a.name === name)?.routePrefix || '/';
  return { app, name, routePrefix, config };
}

async function deployOnHead(instance: RuntimeInstance, req: DeployRequest): Promise<DeployReply> {
  const { app, name, routePrefix, config } = await loadDeployRequest(req);
  // The request itself is what a restarted head deploys again (plain JSON, kept in the checkpoint).
  const source: DeployRequest = { ...req, args: { ...req.args } };
  await instance.deploy([{ name, routePrefix, app }], { config, timeoutS: req.timeout_s || DEFAULT_TIMEOUT_S, source });
  return { name, route_prefix: routePrefix, http: instance.endpoints.http ?? '' };
}
