/**
 * The proxies' security and limit flags of `serve run` and `serve start` (TLS, key files, connection
 * limit) and how they combine with the config file and the keys the application declares:
 *
 *   TLS:   --tls-cert/--tls-key, else the config's http_options.tls / grpc_options.tls, else its tls
 *   keys:  --api-key-file/--admin-key-file/--metrics-key-file, plus the config's auth files, plus what the
 *          application's classes declare (`static ingressKeys`, e.g. LLMServer's api_keys=): all of them count
 */
import { type Command, InvalidArgumentError } from 'commander';
import type { ServeConfig, TlsFiles } from '../config.js';
import { mergeKeys } from '../ingress/declared-keys.js';
import type { IngressKeys } from '../ingress/ingress-keys.js';
import { readKeyFile } from '../ingress/key-file.js';
import type { TlsOptions } from '../ingress/tls.js';
import { CliError, causeOf } from './cli-error.js';

export interface IngressCliOptions {
  tlsCert?: string;
  tlsKey?: string;
  apiKeyFile?: string;
  adminKeyFile?: string;
  metricsKeyFile?: string;
  maxConnections?: number;
}

/** Adds the flags to a command (serve run, serve start). */
export function addIngressOptions(command: Command): Command {
  return command
    .option('--tls-cert <file>', 'PEM certificate chain: serve HTTPS and gRPC over TLS (with --tls-key)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--api-key-file <file>', 'keys that may call applications, one per line (then every route needs a key)')
    .option('--admin-key-file <file>', 'keys that may do everything: applications, monitoring routes, /-/shutdown')
    .option(
      '--metrics-key-file <file>',
      'keys that may read /metrics, /-/status, /-/routes, /-/timeseries, /-/dashboard',
    )
    .option('--max-connections <n>', 'most HTTP connections open at once (default: 1024)', parsePositive);
}

export interface IngressSecurity {
  keys: IngressKeys;
  httpTls?: TlsOptions;
  grpcTls?: TlsOptions;
}

/** The keys and TLS the proxies get; CliError naming the flag or file at fault. */
export function ingressSecurity(
  opts: IngressCliOptions,
  config: ServeConfig | undefined,
  declared: IngressKeys = {},
): IngressSecurity {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
    throw new CliError('--tls-cert and --tls-key go together.', 'Give both: the certificate chain and its key.', 2);
  }
  const cliTls: TlsFiles | undefined = opts.tlsCert ? { cert: opts.tlsCert, key: opts.tlsKey! } : undefined;
  const auth = config?.auth ?? {};
  const fromFiles = (file: string | undefined, flag: string): string[] => {
    if (!file) return [];
    try {
      return readKeyFile(file);
    } catch (err) {
      throw new CliError(`${flag}: ${causeOf(err)}`, 'Give a readable file with one key per line.');
    }
  };
  const keys = mergeKeys(
    {
      apiKeys: fromFiles(opts.apiKeyFile, '--api-key-file'),
      adminKeys: fromFiles(opts.adminKeyFile, '--admin-key-file'),
      metricsKeys: fromFiles(opts.metricsKeyFile, '--metrics-key-file'),
    },
    {
      apiKeys: fromFiles(auth.apiKeyFile, 'config auth.api_key_file'),
      adminKeys: fromFiles(auth.adminKeyFile, 'config auth.admin_key_file'),
      metricsKeys: fromFiles(auth.metricsKeyFile, 'config auth.metrics_key_file'),
    },
    declared,
  );
  return {
    keys,
    httpTls: cliTls ?? config?.httpOptions?.tls ?? config?.tls,
    grpcTls: cliTls ?? config?.grpcOptions?.tls ?? config?.tls,
  };
}

/**
 * The key `serve status` / `serve shutdown` send: the first key of `file`, else FLOTILLA_ADMIN_KEY, else
 * none (an instance without keys needs none).
 */
export function adminKeyFrom(file: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (file) {
    let keys: string[];
    try {
      keys = readKeyFile(file);
    } catch (err) {
      throw new CliError(`--key-file: ${causeOf(err)}`, 'Give a readable file with the key on its first line.');
    }
    if (keys.length === 0) throw new CliError(`--key-file: ${file} holds no key.`, 'Put the key on its first line.');
    return keys[0];
  }
  return env.FLOTILLA_ADMIN_KEY || undefined;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1.');
  return n;
}
