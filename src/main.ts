#!/usr/bin/env node
// The spillway command line: wiring only; the work lives in the components it starts.
import { setFlagsFromString } from 'node:v8';
import { Command } from 'commander';
import { Spillway } from './app.ts';
import { type ConfigOverrides, loadConfig } from './config.ts';
import { ConfigError } from './kube/kubeconfig.ts';
import { createLogger } from './log.ts';
import { VERSION } from './version.ts';

// Between full collections the heap may grow by 40% of what is live (V8 otherwise allows up to 4×):
// at 10,000 pods, about 200 MiB resident instead of 450. Set here so that every way of starting
// Spillway has it; the image also caps the young generation (--max-semi-space-size, command line only).
setFlagsFromString('--heap-growing-percent=40');

interface RunOptions extends ConfigOverrides {
  readonly config?: string;
}

async function run(options: RunOptions): Promise<void> {
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
    .action(run);
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
      error instanceof ConfigError
        ? `configuration error: ${error.message}`
        : `spillway: ${error instanceof Error ? error.message : String(error)}`;
    process.stderr.write(`${message}\n`);
    process.exit(2);
  }
}
