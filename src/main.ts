#!/usr/bin/env -S node --max-semi-space-size=4 --optimize-for-size
// The spillway command line: wiring only; the work lives in the components it starts.
import { setFlagsFromString } from 'node:v8';
import { Command } from 'commander';
import type {
  HostOptions,
  JoinCommandOptions,
  LeaveCommandOptions,
  StatusCommandOptions,
} from './cli/admin.ts';
import type { ConfigOverrides } from './config.ts';
import { VERSION } from './version.ts';

// Between full collections the heap may grow by 40% of what is live (V8 otherwise allows up to 4×):
// at 10,000 pods, about 200 MiB resident instead of 450. Set here so that every way of starting
// Spillway has it; the image also caps the young generation (--max-semi-space-size, command line only).
setFlagsFromString('--heap-growing-percent=40');

// Each command loads what it needs when it runs: `spillway version` or a typo answers at once.
const admin = () => import('./cli/admin.ts');

interface RunOptions extends ConfigOverrides {
  readonly config?: string;
}

async function run(options: RunOptions): Promise<void> {
  const [{ Spillway }, { loadConfig }, { createLogger }] = await Promise.all([
    import('./app.ts'),
    import('./config.ts'),
    import('./log.ts'),
  ]);
  const config = loadConfig(options.config ?? process.env.SPILLWAY_CONFIG, options);
  const logger = createLogger({ level: config.logLevel });
  const spillway = new Spillway(config, logger);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    const forced = setTimeout(() => {
      logger.error('shutdown took longer than 20s; exiting');
      process.exit(1);
    }, 20_000);
    forced.unref();
    await spillway.stop();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await spillway.start();
}

/** The options that say which host cluster and Spillway installation an admin command is about. */
function hostOptions(command: Command): Command {
  return command
    .option(
      '-c, --config <file>',
      "Spillway's configuration file (for the host kubeconfig and namespace); env SPILLWAY_CONFIG",
    )
    .option('--host-kubeconfig <file>', 'kubeconfig of the host cluster; env SPILLWAY_HOST_KUBECONFIG')
    .option('--host-cluster-name <name>', 'name of the host cluster; env SPILLWAY_HOST_CLUSTER_NAME')
    .option('--namespace <namespace>', "Spillway's namespace in the host; env SPILLWAY_NAMESPACE")
    .option('--log-level <level>', 'log level of the command (default warn)');
}

export type { HostOptions };

export function buildProgram(): Command {
  const program = new Command('spillway')
    .description(
      'A virtual kubelet that shows each remote Kubernetes cluster as one Node in a host cluster\n' +
        'and runs the pods bound to it as delegate pods in that remote cluster.',
    )
    .version(VERSION, '-v, --version', 'print the version')
    .showHelpAfterError();
  program
    .command('run')
    .description('run in the foreground until SIGTERM or SIGINT')
    .option('-c, --config <file>', 'configuration file (YAML); env SPILLWAY_CONFIG')
    .option(
      '--host-kubeconfig <file>',
      'kubeconfig of the host cluster (default: in-cluster); env SPILLWAY_HOST_KUBECONFIG',
    )
    .option(
      '--host-cluster-name <name>',
      'name of this host cluster in ownership labels; env SPILLWAY_HOST_CLUSTER_NAME',
    )
    .option('--kubelet-address <ip>', 'address the virtual nodes advertise; env SPILLWAY_KUBELET_ADDRESS')
    .option('--kubelet-port <port>', 'port of the kubelet API; env SPILLWAY_KUBELET_PORT')
    .option('--namespace <namespace>', "Spillway's namespace in the host cluster; env SPILLWAY_NAMESPACE")
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace; env SPILLWAY_LOG_LEVEL')
    .option('--metrics-port <port>', 'port of the metrics endpoint; env SPILLWAY_METRICS_PORT')
    .option('--webhook-port <port>', 'port of the burst webhook; env SPILLWAY_WEBHOOK_PORT')
    .option(
      '--ha-identity <name>',
      "this replica's name in the high-availability Leases (default: host name); env SPILLWAY_HA_IDENTITY",
    )
    .action(run);
  hostOptions(
    program
      .command('join')
      .description(
        'add a remote cluster: create its ServiceAccount and least-privilege RBAC there (as manifests/remote),\n' +
          'mint a bounded-lifetime token, and store it in the host as the Secret Spillway discovers (no restart)',
      )
      .argument('<name>', 'name of the remote cluster (a DNS label); its node is spillway-<name>')
      .requiredOption(
        '--kubeconfig <file>',
        'admin kubeconfig of the remote cluster (used only by this command)',
      )
      .option('--context <name>', 'context of that kubeconfig (default: its current context)')
      .option('--node-name <name>', 'name of the virtual node (default: spillway-<name>)')
      .option(
        '--remote-namespace <namespace>',
        "Spillway's namespace in the remote (default: that of manifests/remote)",
      )
      .option(
        '--duration <duration>',
        'lifetime of the token (e.g. 720h, 30d); rotate before it ends',
        '720h',
      )
      .option(
        '--server <url>',
        "the remote API server's URL as Spillway reaches it (default: the kubeconfig's)",
      )
      .option('--rotate', 'replace the credential of a remote that has joined; running pods are not touched')
      .option(
        '--revoke-previous',
        'with --rotate: revoke the replaced credential at once (default: at the next rotation)',
      )
      .option('--wait', 'wait until the virtual node is Ready')
      .option('--timeout <duration>', 'how long --wait waits', '5m'),
  ).action(async (name: string, options: JoinCommandOptions) => (await admin()).joinCommand(name, options));
  hostOptions(
    program
      .command('leave')
      .description(
        'remove a joined remote cluster: delete its Secret (Spillway drains the node), wait for the drain, and\n' +
          "with --kubeconfig remove Spillway's identity and credentials from the remote",
      )
      .argument('<name>', 'name of the remote cluster')
      .option(
        '--kubeconfig <file>',
        'admin kubeconfig of the remote cluster, to remove what join created there',
      )
      .option('--context <name>', 'context of that kubeconfig')
      .option(
        '--remote-namespace <namespace>',
        "Spillway's namespace in the remote (default: as recorded by join)",
      )
      .option('--timeout <duration>', 'how long to wait for the drain', '5m'),
  ).action(async (name: string, options: LeaveCommandOptions) => (await admin()).leaveCommand(name, options));
  hostOptions(
    program
      .command('status')
      .description(
        'show each remote cluster: node readiness, capacity and use, pods by phase, last error, owner replica',
      )
      .option('-o, --output <format>', 'text or json', 'text'),
  ).action(async (options: StatusCommandOptions) => (await admin()).statusCommand(options));
  program
    .command('version')
    .description('print the version')
    .action(() => {
      process.stdout.write(`spillway ${VERSION}\n`);
    });
  return program;
}

if (import.meta.main) {
  try {
    await buildProgram().parseAsync();
  } catch (error) {
    const message =
      error instanceof Error && error.name === 'ConfigError' // (kube/kubeconfig.ts; not imported, to start fast)
        ? `configuration error: ${error.message}`
        : `spillway: ${error instanceof Error ? error.message : String(error)}`;
    process.stderr.write(`${message}\n`);
    process.exit(2);
  }
}
