/**
 * The cluster port's credentials on the command line, declared in one place for every command that
 * serves or dials it:
 *
 *   head (run, start):         --cluster-token-file F  --cluster-tls-cert F --cluster-tls-key F
 *                              [--cluster-tls-ca F --cluster-tls-require-client-cert]
 *   clients (agent, deploy,    --token-file F  [--tls | --tls-ca F] [--tls-cert F --tls-key F]
 *            status):          [--tls-server-name NAME]
 *   build:                     --cluster-tls-ca F --cluster-tls-cert F --cluster-tls-key F
 *                              [--cluster-tls-agent-cert F --cluster-tls-agent-key F]   (into the Secret)
 *
 * The head's flags carry the `cluster-` prefix because run/start also serve HTTP and gRPC, whose own TLS
 * is another matter. The token itself never goes on a command line (process lists show it): it comes
 * from a file, FLOTILLA_CLUSTER_TOKEN, or the config directory (cluster/cluster-token.ts).
 */
import type { Command } from 'commander';
import type { ClusterClientAuth } from '../cluster/cluster-client.js';
import type { ClusterHeadOptions } from '../cluster/head.js';

export interface ClusterHeadCliOptions {
  clusterTokenFile?: string;
  clusterTlsCert?: string;
  clusterTlsKey?: string;
  clusterTlsCa?: string;
  clusterTlsRequireClientCert?: boolean;
}

export interface ClusterClientCliOptions {
  tokenFile?: string;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}

const HEAD_FLAGS: [string, string][] = [
  [
    '--cluster-token-file <file>',
    'file with the cluster token agents and serve deploy must present (default: FLOTILLA_CLUSTER_TOKEN, ' +
      'else ~/.flotilla/cluster-token, generated with mode 0600 if missing)',
  ],
  [
    '--cluster-tls-cert <file>',
    'TLS certificate (PEM) of the cluster port; with --cluster-tls-key, agents dial it over TLS',
  ],
  ['--cluster-tls-key <file>', 'private key (PEM) of --cluster-tls-cert'],
  [
    '--cluster-tls-ca <file>',
    'CA (PEM) that signs agent and client certificates, for --cluster-tls-require-client-cert',
  ],
  [
    '--cluster-tls-require-client-cert',
    'mutual TLS: refuse cluster clients without a certificate signed by --cluster-tls-ca',
  ],
];

const CLIENT_FLAGS: [string, string][] = [
  [
    '--token-file <file>',
    "file with the head's cluster token (default: FLOTILLA_CLUSTER_TOKEN, else ~/.flotilla/cluster-token)",
  ],
  ['--tls', "dial the head's cluster port over TLS, trusting the system's root CAs (implied by --tls-ca)"],
  ['--tls-ca <file>', "CA (PEM) that signed the head's cluster certificate"],
  ['--tls-cert <file>', 'this client certificate (PEM), for a head that requires client certificates'],
  ['--tls-key <file>', 'private key (PEM) of --tls-cert'],
  ['--tls-server-name <name>', "name to check the head's certificate against (default: the host of --address)"],
];

const BUILD_FLAGS: [string, string][] = [
  ['--cluster-tls-ca <file>', "CA (PEM) that signed the head's cluster certificate (and the agents', for mutual TLS)"],
  [
    '--cluster-tls-cert <file>',
    "the head's cluster certificate (PEM); it must name NAME-head, the address agents dial",
  ],
  ['--cluster-tls-key <file>', 'private key (PEM) of --cluster-tls-cert'],
  ['--cluster-tls-agent-cert <file>', "agents' client certificate (PEM): the head then requires it (mutual TLS)"],
  ['--cluster-tls-agent-key <file>', 'private key (PEM) of --cluster-tls-agent-cert'],
];

/**
 * Adds the head flags to run/start, the client flags to agent/deploy/status and the Secret's TLS files
 * to build (a flag already declared is kept).
 */
export function addClusterOptions(program: Command): void {
  const byCommand: Record<string, [string, string][]> = {
    run: HEAD_FLAGS,
    start: HEAD_FLAGS,
    agent: CLIENT_FLAGS,
    deploy: CLIENT_FLAGS,
    status: CLIENT_FLAGS,
    build: BUILD_FLAGS,
  };
  for (const cmd of program.commands) {
    const flags = byCommand[cmd.name()] ?? [];
    for (const [flag, description] of flags) {
      const long = flag.split(' ')[0]!;
      if (!cmd.options.some((o) => o.long === long)) cmd.option(flag, description);
    }
  }
}

/** The head's token and TLS options from its flags (ClusterHeadOptions' token/tls part). */
export function clusterHeadSecurity(opts: ClusterHeadCliOptions): Pick<ClusterHeadOptions, 'tokenFile' | 'tls'> {
  const tlsGiven = opts.clusterTlsCert || opts.clusterTlsKey || opts.clusterTlsCa || opts.clusterTlsRequireClientCert;
  return {
    ...(opts.clusterTokenFile ? { tokenFile: opts.clusterTokenFile } : {}),
    ...(tlsGiven
      ? {
          tls: {
            certFile: opts.clusterTlsCert ?? '',
            keyFile: opts.clusterTlsKey ?? '',
            caFile: opts.clusterTlsCa,
            requireClientCert: opts.clusterTlsRequireClientCert ?? false,
          },
        }
      : {}),
  };
}

/** A client's token and TLS options from its flags; TLS when any --tls* flag is given. */
export function clusterClientAuth(opts: ClusterClientCliOptions): ClusterClientAuth {
  const tlsGiven = opts.tls || opts.tlsCa || opts.tlsCert || opts.tlsKey || opts.tlsServerName;
  return {
    ...(opts.tokenFile ? { tokenFile: opts.tokenFile } : {}),
    ...(tlsGiven
      ? { tls: { caFile: opts.tlsCa, certFile: opts.tlsCert, keyFile: opts.tlsKey, serverName: opts.tlsServerName } }
      : {}),
  };
}
