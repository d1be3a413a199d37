// Wiring of the burst webhook: serve it, and point the host API server at it.
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ClusterClient } from '../kube/client.ts';
import type { RemoteSpec } from '../remotes/remote.ts';
import type { CertificateAuthority } from '../tls/pki.ts';
import { installWebhookConfiguration, type WebhookClientConfig, webhookConfiguration } from './install.ts';
import type { BurstOptions } from './mutation.ts';
import { MUTATE_PATH, WebhookServer } from './server.ts';

/** What burst pods need to know about the virtual nodes, read afresh for every pod. */
/** Every remote's spec (with high availability, also those other replicas run). */
export interface RemoteList {
  list(): readonly { readonly spec: RemoteSpec }[];
}

export function burstOptions(config: Config, registry: RemoteList): BurstOptions {
  const taints = new Map<string, { key: string; value?: string; effect: string }>();
  for (const remote of registry.list()) {
    for (const taint of remote.spec.taints ?? config.node.taints) {
      taints.set(`${taint.key}=${taint.value ?? ''}:${taint.effect}`, {
        key: taint.key,
        value: taint.value,
        effect: taint.effect,
      });
    }
  }
  const remoteWeights: Record<string, number> = {};
  for (const remote of config.remotes)
    if (remote.burstWeight) remoteWeights[remote.name] = remote.burstWeight;
  return {
    virtualTaints: [...taints.values()],
    preferLocalWeight: config.webhook.preferLocalWeight,
    remoteWeights,
    notReadyTolerationSeconds: config.webhook.notReadyTolerationSeconds,
  };
}

export async function startBurstWebhook(options: {
  config: Config;
  host: ClusterClient;
  registry: RemoteList;
  signal: AbortSignal;
  logger: Logger;
  /** Replicas share one CA, so the configuration's caBundle verifies whichever serves (high availability). */
  authority?: CertificateAuthority;
  /** Install the configuration now (default: webhook.install); high availability leaves it to the leader. */
  install?: boolean;
}): Promise<WebhookServer> {
  const { config, host, registry, signal, logger } = options;
  const { webhook, kubelet } = config;
  const service = webhook.service;
  const serviceNames = service
    ? [`${service.name}.${service.namespace}.svc`, `${service.name}.${service.namespace}.svc.cluster.local`]
    : [];
  const urlHost = webhook.url ? new URL(webhook.url).hostname.replace(/^\[|\]$/g, '') : undefined;
  const server = new WebhookServer({
    bindAddress: webhook.bindAddress ?? kubelet.bindAddress ?? kubelet.address,
    port: webhook.port,
    subjectAltNames: [
      ...new Set([kubelet.address, 'localhost', ...(urlHost ? [urlHost] : []), ...serviceNames]),
    ],
    burstOptions: () => burstOptions(config, registry),
    authority: options.authority,
    logger,
  });
  await server.start(signal);
  if (options.install ?? webhook.install) await installBurstWebhook(config, host, server, logger);
  return server;
}

/** Points the host API server at this process's webhook (its URL or the Service, and the CA bundle). */
export async function installBurstWebhook(
  config: Config,
  host: ClusterClient,
  server: WebhookServer,
  logger: Logger,
): Promise<void> {
  const { webhook, kubelet } = config;
  const service = webhook.service;
  const address = isIPv6(kubelet.address) ? `[${kubelet.address}]` : kubelet.address;
  const clientConfig: WebhookClientConfig = service
    ? { service: { ...service, path: MUTATE_PATH }, caBundle: server.caBundle }
    : { url: webhook.url ?? `https://${address}:${server.port}${MUTATE_PATH}`, caBundle: server.caBundle };
  await installWebhookConfiguration(
    host,
    webhookConfiguration(webhookConfigurationName(config), clientConfig, webhook.timeoutSeconds),
    logger,
  );
}

/** One configuration per Spillway installation (its namespace) in a host cluster. */
export function webhookConfigurationName(config: Config): string {
  return `spillway-burst.${config.namespace}`;
}
