// The commands an operator runs against a host cluster (not the long-running `run`): join, leave and
// status. They read the same configuration as `run` (file, environment, flags) for the host and
// Spillway's namespace, and talk to the API servers only.

import type { V1Node } from '@kubernetes/client-node';
import { type Config, type ConfigOverrides, loadConfig, nodeNameOf } from '../config.ts';
import { parseDuration } from '../join/duration.ts';
import { formatReport, joinRemote } from '../join/join.ts';
import { leaveRemote } from '../join/leave.ts';
import { ClusterClient } from '../kube/client.ts';
import { ConfigError, kubeConfigFromFile, kubeConfigInCluster } from '../kube/kubeconfig.ts';
import { createLogger, type Logger } from '../log.ts';
import { nodeReady } from '../metrics/remotes.ts';
import { collectStatus } from '../status/collect.ts';
import { formatStatus } from '../status/format.ts';

export interface HostOptions extends ConfigOverrides {
  readonly config?: string;
}

interface HostContext {
  readonly config: Config;
  readonly host: ClusterClient;
  readonly logger: Logger;
}

function hostContext(options: HostOptions): HostContext {
  const config = loadConfig(options.config ?? process.env.SPILLWAY_CONFIG, options);
  const logger = createLogger({ level: options.logLevel ?? 'warn' });
  const kubeConfig = config.host.kubeconfig
    ? kubeConfigFromFile(config.host.kubeconfig, 'host.kubeconfig')
    : kubeConfigInCluster('--host-kubeconfig');
  const host = new ClusterClient({ name: 'host', kubeConfig, logger, userAgent: 'spillway (admin command)' });
  return { config, host, logger };
}

function remoteKubeConfig(path: string, context: string | undefined) {
  const kubeConfig = kubeConfigFromFile(path, '--kubeconfig');
  if (context) {
    if (!kubeConfig.getContextObject(context))
      throw new ConfigError('--context', `no context "${context}" in ${path}`);
    kubeConfig.setCurrentContext(context);
  }
  return kubeConfig;
}

function durationSeconds(text: string, field: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new ConfigError(field, (error as Error).message);
  }
}

export interface JoinCommandOptions extends HostOptions {
  readonly kubeconfig: string;
  readonly context?: string;
  readonly nodeName?: string;
  readonly remoteNamespace?: string;
  readonly duration: string;
  readonly server?: string;
  readonly rotate?: boolean;
  readonly revokePrevious?: boolean;
  readonly wait?: boolean;
  readonly timeout: string;
}

export async function joinCommand(name: string, options: JoinCommandOptions): Promise<void> {
  const expirationSeconds = durationSeconds(options.duration, '--duration');
  if (expirationSeconds < 600)
    throw new ConfigError('--duration', 'must be at least 10m (the TokenRequest minimum)');
  if (options.revokePrevious && !options.rotate)
    throw new ConfigError('--revoke-previous', 'only with --rotate');
  const timeoutMs = durationSeconds(options.timeout, '--timeout') * 1000;
  const remote = remoteKubeConfig(options.kubeconfig, options.context);
  const { config, host, logger } = hostContext(options);
  try {
    const report = await joinRemote({
      name,
      remoteKubeConfig: remote,
      host,
      namespace: config.namespace,
      hostClusterName: config.hostClusterName,
      remoteNamespace: options.remoteNamespace,
      nodeName: options.nodeName,
      expirationSeconds,
      rotate: Boolean(options.rotate),
      revokePrevious: Boolean(options.revokePrevious),
      server: options.server,
      staticNames: new Set(config.remotes.map((r) => r.name)),
      logger,
    });
    const verb = options.rotate ? 'rotated the credential of' : 'joined';
    process.stdout.write(
      `${verb} remote cluster ${name} (host cluster ${config.hostClusterName}):\n${formatReport(report.lines)}\n`,
    );
    if (options.wait) {
      process.stdout.write(`waiting for node ${report.nodeName} to be Ready…\n`);
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const node = await host
          .get<V1Node>(`/api/v1/nodes/${report.nodeName}`, { attempts: 1 })
          .catch(() => undefined);
        if (nodeReady(node)) break;
        if (Date.now() > deadline)
          throw new Error(
            `node ${report.nodeName} not Ready after ${options.timeout}: is Spillway running? (spillway status)`,
          );
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      process.stdout.write(`node ${report.nodeName} is Ready\n`);
    } else if (!options.rotate) {
      process.stdout.write(
        `node ${report.nodeName} appears once Spillway picks the Secret up; see: spillway status\n`,
      );
    }
  } finally {
    host.close();
  }
}

export interface LeaveCommandOptions extends HostOptions {
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly remoteNamespace?: string;
  readonly timeout: string;
}

export async function leaveCommand(name: string, options: LeaveCommandOptions): Promise<void> {
  const timeoutMs = durationSeconds(options.timeout, '--timeout') * 1000;
  const remote = options.kubeconfig ? remoteKubeConfig(options.kubeconfig, options.context) : undefined;
  const { config, host, logger } = hostContext(options);
  try {
    const lines = await leaveRemote({
      name,
      host,
      namespace: config.namespace,
      hostClusterName: config.hostClusterName,
      remoteKubeConfig: remote,
      remoteNamespace: options.remoteNamespace,
      timeoutMs,
      staticNames: new Set(config.remotes.map((r) => r.name)),
      logger,
      progress: (message) => process.stderr.write(`  … ${message}\n`),
    });
    process.stdout.write(
      `remote cluster ${name} left host cluster ${config.hostClusterName}:\n${formatReport(lines)}\n`,
    );
  } finally {
    host.close();
  }
}

export interface StatusCommandOptions extends HostOptions {
  readonly output: string;
}

export async function statusCommand(options: StatusCommandOptions): Promise<void> {
  if (options.output !== 'text' && options.output !== 'json')
    throw new ConfigError('--output', 'must be text or json');
  const { config, host } = hostContext(options);
  try {
    const report = await collectStatus({
      host,
      namespace: config.namespace,
      hostClusterName: config.hostClusterName,
      configured: config.remotes.map((r) => ({ name: r.name, nodeName: nodeNameOf(r) })),
    });
    process.stdout.write(
      options.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : formatStatus(report),
    );
  } finally {
    host.close();
  }
}
