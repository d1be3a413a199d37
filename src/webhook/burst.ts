// Wiring of the burst webhook: serve it, and point the host API server at it.
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { ClusterClient } from '../kube/client.ts';
import { messageOf } from '../kube/errors.ts';
import { policyPatch } from '../namespaces/affinity.ts';
import type { HostNamespaces } from '../namespaces/host-namespaces.ts';
import { ANNOTATION_REMOTE_CLUSTERS, remotePatterns } from '../namespaces/policy.ts';
import type { RemoteSpec } from '../remotes/remote.ts';
import type { CertificateAuthority } from '../tls/pki.ts';
import { installWebhookConfiguration, type WebhookClientConfig, webhookConfiguration } from './install.ts';
import type { BurstOptions } from './mutation.ts';
import { MUTATE_PATH, MUTATE_POLICY_PATH, WebhookServer } from './server.ts';

/** Every remote's spec (with high availability, also those other replicas run). */
export interface RemoteList {
  list(): readonly { readonly spec: RemoteSpec }[];
}

/** What burst pods need to know about the virtual nodes, read afresh for every pod. */
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
  /** The host's namespaces: those with spillway.dev/remote-clusters get the policy's mutation. */
  namespaces: HostNamespaces;
  /** Replicas share one CA, so the configuration's caBundle verifies whichever serves (high availability). */
  authority?: CertificateAuthority;
  /** Install the configuration now (default: webhook.install); high availability leaves it to the leader. */
  install?: boolean;
}): Promise<WebhookServer> {
  const { config, host, registry, signal, logger, namespaces } = options;
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
    policy: (pod, namespace) =>
      policyPatch(
        pod,
        remotePatterns(namespaces.get(namespace)),
        registry.list().map((remote) => remote.spec.name),
      ),
    authority: options.authority,
    logger,
  });
  await server.start(signal);
  if (options.install ?? webhook.install)
    await installBurstWebhook(config, host, server, namespaces, logger, signal);
  return server;
}

/**
 * Points the host API server at this process's webhook (its URL or the Service, and the CA bundle),
 * with the namespace policy's rule for the namespaces that have one; the configuration follows them
 * until `signal` aborts.
 */
export async function installBurstWebhook(
  config: Config,
  host: ClusterClient,
  server: WebhookServer,
  namespaces: HostNamespaces,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> {
  const { webhook, kubelet } = config;
  const service = webhook.service;
  const address = isIPv6(kubelet.address) ? `[${kubelet.address}]` : kubelet.address;
  const clientConfig: WebhookClientConfig = service
    ? { service: { ...service, path: MUTATE_PATH }, caBundle: server.caBundle }
    : { url: webhook.url ?? `https://${address}:${server.port}${MUTATE_PATH}`, caBundle: server.caBundle };
  const install = (policyNamespaces: readonly string[]) =>
    installWebhookConfiguration(
      host,
      webhookConfiguration(
        webhookConfigurationName(config),
        clientConfig,
        webhook.timeoutSeconds,
        policyNamespaces,
        MUTATE_POLICY_PATH,
      ),
      logger,
    );
  await namespaces.ready;
  let installed = policyNamespaces(namespaces);
  await install(installed);
  // The namespaces with a remote policy change: the configuration follows (one update at a time).
  let pending: Promise<void> = Promise.resolve();
  const unsubscribe = namespaces.subscribe(() => {
    pending = pending.then(async () => {
      const wanted = policyNamespaces(namespaces);
      if (wanted.join() === installed.join()) return;
      try {
        await install(wanted);
        installed = wanted;
      } catch (error) {
        logger.warn(
          { err: messageOf(error) },
          'could not update the webhook configuration for the namespace policy',
        );
      }
    });
  });
  signal.addEventListener('abort', unsubscribe, { once: true });
}

/** The host namespaces whose pods may use only some remotes, sorted. */
function policyNamespaces(namespaces: HostNamespaces): string[] {
  return namespaces
    .list()
    .filter((n) => n.metadata.annotations[ANNOTATION_REMOTE_CLUSTERS] !== undefined)
    .map((n) => n.metadata.name)
    .sort();
}

/** One configuration per Spillway installation (its namespace) in a host cluster. */
export function webhookConfigurationName(config: Config): string {
  return `spillway-burst.${config.namespace}`;
}
