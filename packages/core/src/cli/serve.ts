#!/usr/bin/env node
/**
 * The `serve` (alias `flotilla`) command line: run, start, deploy, agent, build, status, shutdown, and
 * whatever commands plug-ins add (the LLM package adds `bench`; bin/serve.js passes it in).
 * Runs under tsx (bin/serve.js or `npm run serve`), so user modules may be TypeScript with decorators.
 */
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_ADDRESS, shutdownCommand, statusCommand } from './admin-client.js';
import { CliError, formatCliError } from './cli-error.js';
import { runCommand } from './run-command.js';
import { agentCommand } from './agent-command.js';
import { buildCommand } from './build-command.js';
import { startCommand } from './start-command.js';
import { deployCommand } from './deploy-command.js';
import { addIngressOptions, adminKeyFrom } from './ingress-options.js';
import { addClusterOptions, type ClusterClientCliOptions } from './cluster-options.js';

/**
 * A CLI plug-in: adds its commands to the program. Core knows nothing of what plug-ins do (the LLM load
 * generator `serve bench` is one, from @flotilla/deployments); the executable decides which to load.
 */
export type CliPlugin = (program: Command) => void;

export function buildProgram(plugins: readonly CliPlugin[] = []): Command {
  const program = new Command('serve')
    .description('Flotilla: serve multi-model pipelines of actor deployments over HTTP and gRPC.')
    .showHelpAfterError('(run `serve --help` for usage)');
  addIngressOptions(program.command('run'))
    .description('Deploy an application and serve it until Ctrl+C / SIGTERM (then drain and exit 0).')
    .argument(
      '[target]',
      'FILE:EXPORT of an Application or of a builder (args) => Application; the export defaults to "app"',
    )
    .argument('[args...]', 'key=value arguments for a builder')
    .option('--host <host>', "HTTP and gRPC interface (default: 127.0.0.1, or the config file's)")
    .option('--port <port>', 'HTTP port (default: 8000)', parsePort)
    .option('--grpc-port <port>', 'gRPC port; 0 picks a free one (default: 9000)', parsePort)
    .option('--no-grpc', 'do not start the gRPC proxy')
    .option('--config <file>', 'YAML or JSON serve config: deployment option overrides per application')
    .option('--name <name>', 'application name (default: the export name, or "default")')
    .option('--route-prefix <prefix>', 'HTTP route prefix of the application (default: /)')
    .option('--request-timeout <ms>', 'HTTP request timeout in ms, 0 for none (default: 120000)', parseNonNegative)
    .option('--body-limit <bytes>', 'largest HTTP request body in bytes (default: 4194304)', parseNonNegative)
    .option('--drain-timeout <ms>', 'how long shutdown waits for in-flight requests (default: 30000)', parseNonNegative)
    .option(
      '--cluster-port <port>',
      'make this instance a cluster head: agents join on this port (9100 by convention; 0 picks one)',
      parsePort,
    )
    .option(
      '--cluster-host <host>',
      'interface agents connect to; 0.0.0.0 for other machines (default: --host, else 127.0.0.1)',
    )
    .action(async (target: string | undefined, args: string[], opts) => {
      await runCommand(target, args, opts);
    });
  addIngressOptions(program.command('start'))
    .description(
      'Start a head with no application: controller, cluster port for agents and `serve deploy`, HTTP and gRPC ' +
        'proxies; serve until Ctrl+C / SIGTERM (then drain and exit 0).',
    )
    .option('--head', 'this node is the cluster head (the only kind `serve start` starts)')
    .option('--host <host>', "HTTP and gRPC interface (default: 127.0.0.1, or the config file's)")
    .option('--port <port>', 'HTTP port (default: 8000)', parsePort)
    .option('--grpc-port <port>', 'gRPC port; 0 picks a free one (default: 9000)', parsePort)
    .option('--no-grpc', 'do not start the gRPC proxy')
    .option(
      '--cluster-port <port>',
      'port agents and `serve deploy` connect to; 0 picks one (default: 9100)',
      parsePort,
    )
    .option(
      '--cluster-host <host>',
      'interface of the cluster port; 0.0.0.0 for other machines (default: --host, else 127.0.0.1)',
    )
    .option('--config <file>', 'YAML or JSON serve config: proxy options and deployment option overrides')
    .option(
      '--checkpoint <file>',
      'controller checkpoint; a head restarted after a crash deploys again what it names and ' +
        "re-adopts the agents' replicas (default: one per working directory under the temp dir)",
    )
    .option(
      '--state <url>',
      'where the controller state lives: etcd://HOST:PORT[,HOST:PORT...][/NAME][?ttl=S] for heads that elect ' +
        'a leader and take over from each other (default: the local checkpoint file)',
    )
    .option(
      '--retry-after-head-loss',
      "a standby's proxies send again a request cut by the leader's death to the next leader (none lost; a request may run twice)",
    )
    .option('--request-timeout <ms>', 'HTTP request timeout in ms, 0 for none (default: 120000)', parseNonNegative)
    .option('--body-limit <bytes>', 'largest HTTP request body in bytes (default: 4194304)', parseNonNegative)
    .option('--drain-timeout <ms>', 'how long shutdown waits for in-flight requests (default: 30000)', parseNonNegative)
    .action(async (opts) => {
      await startCommand(opts);
    });
  program
    .command('deploy')
    .description(
      'Deploy an application onto a running head (serve start --head), or update the one of the same name in place; ' +
        'other applications keep running. The module must be at the same path on the head.',
    )
    .argument('[target]', 'FILE:EXPORT, as for serve run')
    .argument('[args...]', 'key=value arguments for a builder')
    .requiredOption('--address <host:port>', "the head's cluster address (its banner names it)")
    .option('--name <name>', 'application name (default: the config\'s, else the export name, or "default")')
    .option('--route-prefix <prefix>', "HTTP route prefix of the application (default: the config's, else /)")
    .option('--config <file>', 'YAML or JSON serve config, sent to the head: deployment option overrides')
    .option('--timeout <s>', 'seconds to wait for the application to be RUNNING (default: 120)', parseNonNegative)
    .action(async (target: string | undefined, args: string[], opts) => {
      process.stdout.write(await deployCommand(target, args, opts));
    });
  program
    .command('agent')
    .description(
      'Join a head (serve start --head, or serve run --cluster-port) as a node agent: host replicas and an HTTP ' +
        'proxy there until Ctrl+C / SIGTERM. The application code must be at the same path on this node as on the head.',
    )
    .requiredOption(
      '--address <host:port>',
      "the head's cluster address; several heads that elect a leader: HOST:PORT,HOST:PORT,...",
    )
    .option('--node-id <id>', 'unique node name (default: the host name)')
    .option('--cpus <n>', 'CPUs offered to placement (default: detected)', parseNonNegative)
    .option(
      '--gpus <n>',
      'GPUs offered to placement (default: FLOTILLA_GPUS, else CUDA_VISIBLE_DEVICES, else 0)',
      parseNonNegative,
    )
    .option('--memory-mb <n>', 'memory offered to placement in MiB (default: total memory)', parseNonNegative)
    .option('--label <k=v>', 'a label shown in `serve status` (repeatable)', (v: string, prev: string[] = []) => [
      ...prev,
      v,
    ])
    .option('--working-dir <dir>', 'current directory of the replica processes (default: this one)')
    .option('--connect-timeout <ms>', 'how long to keep trying to reach the head (default: 10000)', parseNonNegative)
    .option('--http-host <host>', "interface of this node's HTTP proxy (default: 127.0.0.1)")
    .option(
      '--http-port <port>',
      "port of this node's HTTP proxy; 0 picks one (default: 8000, skipped if taken)",
      parsePort,
    )
    .option('--no-proxy', 'run no HTTP proxy on this node')
    .option(
      '--retry-after-head-loss',
      "the proxy sends again a request cut by the head's death to the next head (none lost; a request may run twice)",
    )
    .action(async (opts) => {
      await agentCommand(opts);
    });
  program
    .command('build')
    .description(
      'Write Kubernetes manifests for an application: head Deployment and Service, GPU agent StatefulSet, ' +
        'ConfigMap, probes and an HPA on the queue metric.',
    )
    .argument('<target>', 'FILE:EXPORT, as for serve run')
    .argument('[args...]', 'key=value arguments for a builder')
    .requiredOption('--out <dir>', 'directory to write the manifests to')
    .option('--target <kind>', 'what to build for (only kubernetes)', 'kubernetes')
    .option(
      '--image <image>',
      'container image with Node 20, this repository and the application at the same path (default: flotilla:VERSION, as the Dockerfile builds it)',
    )
    .option('--name <name>', 'base name of the Kubernetes objects (default: flotilla)')
    .option('--namespace <ns>', "namespace of the objects (default: none, i.e. kubectl's)")
    .option('--config <file>', 'serve config to ship in the ConfigMap and apply to the deployments')
    .action(async (target: string, args: string[], opts) => {
      process.stdout.write(await buildCommand(target, args, opts));
    });
  program
    .command('status')
    .description('Show applications, deployments and replicas of a running instance.')
    .option('--json', 'print the raw /-/status JSON')
    .option(
      '--address <url>',
      "HTTP address of the instance, or a head's cluster address HOST:PORT (read with the cluster token)",
      DEFAULT_ADDRESS,
    )
    .option('--key-file <file>', 'file whose first key (admin or metrics) is sent (default: FLOTILLA_ADMIN_KEY)')
    .action(async (opts: { json?: boolean; address: string; keyFile?: string } & ClusterClientCliOptions) => {
      process.stdout.write(await statusCommand(opts.address, opts.json ?? false, opts, adminKeyFrom(opts.keyFile)));
    });
  program
    .command('shutdown')
    .description(
      'Drain and stop a running instance (POST /-/shutdown: with an admin key when it has keys, else from loopback only).',
    )
    .option('--address <url>', 'HTTP address of the instance', DEFAULT_ADDRESS)
    .option('--key-file <file>', 'file whose first key (an admin key) is sent (default: FLOTILLA_ADMIN_KEY)')
    .action(async (opts: { address: string; keyFile?: string }) => {
      process.stdout.write(await shutdownCommand(opts.address, undefined, adminKeyFrom(opts.keyFile)));
    });
  // The cluster port's token and TLS flags on run, start, agent, deploy and status.
  addClusterOptions(program);
  for (const plugin of plugins) plugin(program);
  return program;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535.');
  return n;
}

function parseNonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0.');
  return n;
}

export async function main(argv = process.argv, plugins: readonly CliPlugin[] = []): Promise<void> {
  try {
    await buildProgram(plugins).parseAsync(argv);
  } catch (err) {
    process.stderr.write(formatCliError(err));
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
  }
}
