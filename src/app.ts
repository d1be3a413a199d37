// Spillway assembled from its configuration: the host client, the remote clusters from the file and
// from discovered Secrets, each with its virtual node.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type Config, nodeNameOf, type RemoteConfig } from './config.ts';
import { ClusterClient, spillwayUserAgent } from './kube/client.ts';
import type { KubeConfig } from './kube/credentials.ts';
import { messageOf } from './kube/errors.ts';
import { EventRecorder } from './kube/events.ts';
import {
  ConfigError,
  kubeConfigFromFile,
  kubeConfigFromString,
  kubeConfigInCluster,
} from './kube/kubeconfig.ts';
import { PodResolver } from './kubelet/resolve.ts';
import { KubeletServer } from './kubelet/server.ts';
import { ServingCertificate } from './kubelet/tls.ts';
import { RemoteDiscovery } from './remotes/discovery.ts';
import { RemoteRegistry } from './remotes/registry.ts';
import type { RemoteSpec } from './remotes/remote.ts';
import { startBurstWebhook } from './webhook/burst.ts';
import type { WebhookServer } from './webhook/server.ts';

export class Spillway {
  readonly config: Config;
  readonly host: ClusterClient;
  private readonly logger: Logger;
  private readonly controller = new AbortController();
  private registryInstance: RemoteRegistry | undefined;
  private discovery: RemoteDiscovery | undefined;
  private kubeletServer: KubeletServer | undefined;
  private webhookServer: WebhookServer | undefined;

  constructor(config: Config, logger: Logger) {
    this.config = config;
    this.logger = logger;
    const kubeConfig = config.host.kubeconfig
      ? kubeConfigFromFile(config.host.kubeconfig, 'host.kubeconfig')
      : kubeConfigInCluster('host.kubeconfig');
    this.host = new ClusterClient({
      name: 'host',
      kubeConfig,
      logger,
      qps: config.host.qps,
      burst: config.host.burst,
      userAgent: spillwayUserAgent(config.hostClusterName, 'host'),
    });
  }

  get registry(): RemoteRegistry {
    if (!this.registryInstance) throw new Error('Spillway not started');
    return this.registryInstance;
  }

  /** Connects to the host, starts every configured remote and the discovery of remote-cluster Secrets. */
  async start(): Promise<void> {
    const hostVersion = await this.hostVersion();
    const events = new EventRecorder({ client: this.host, component: 'spillway', logger: this.logger });
    this.registryInstance = new RemoteRegistry({
      config: this.config,
      host: this.host,
      events,
      logger: this.logger,
      hostVersion,
    });
    for (const [index, remote] of this.config.remotes.entries()) {
      await this.registryInstance.upsert(await this.remoteSpec(remote, index));
    }
    if (this.config.discovery.enabled) {
      this.discovery = new RemoteDiscovery({
        host: this.host,
        namespace: this.config.namespace,
        registry: this.registryInstance,
        events,
        logger: this.logger,
        staticNames: new Set(this.config.remotes.map((r) => r.name)),
      });
      this.discovery.start(this.controller.signal);
    }
    const kubelet = this.config.kubelet;
    this.kubeletServer = new KubeletServer({
      bindAddress: kubelet.bindAddress ?? kubelet.address,
      port: kubelet.port,
      host: this.host,
      resolver: new PodResolver(this.registryInstance),
      certificate: new ServingCertificate({
        mode: kubelet.tls.mode,
        address: kubelet.address,
        nodeNames: () => this.registryInstance?.list().map((r) => r.spec.nodeName) ?? [],
        host: this.host,
        logger: this.logger,
        certFile: kubelet.tls.certFile,
        keyFile: kubelet.tls.keyFile,
        approve: kubelet.tls.approveCsr,
        csrExpirationSeconds: kubelet.tls.csrExpirationSeconds,
      }),
      clientCA: kubelet.clientCAFile ? readFileSync(kubelet.clientCAFile, 'utf8') : undefined,
      maxSessionsPerClient: kubelet.maxSessionsPerClient,
      metricsSource: kubelet.metrics.source,
      logger: this.logger.child({ component: 'kubelet' }),
    });
    await this.kubeletServer.start(this.controller.signal);
    if (this.config.webhook.enabled) {
      this.webhookServer = await startBurstWebhook({
        config: this.config,
        host: this.host,
        registry: this.registryInstance,
        signal: this.controller.signal,
        logger: this.logger.child({ component: 'webhook' }),
      });
    }
    this.logger.info(
      {
        hostClusterName: this.config.hostClusterName,
        remotes: this.config.remotes.map((r) => r.name),
        namespace: this.config.namespace,
      },
      'spillway started',
    );
  }

  private async hostVersion(): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const info = await this.host.get<{ gitVersion: string }>('/version', {
          lane: 'heartbeat',
          attempts: 1,
        });
        return info.gitVersion;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`cannot reach the host cluster at ${this.host.server}: ${messageOf(error)}`, {
            cause: error,
          });
        }
        this.logger.warn({ err: messageOf(error) }, 'host cluster not reachable yet; retrying');
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  private async remoteSpec(remote: RemoteConfig, index: number): Promise<RemoteSpec> {
    const field = `remotes[${index}]`;
    let content: string;
    let kubeConfig: KubeConfig;
    if (remote.kubeconfig) {
      kubeConfig = kubeConfigFromFile(remote.kubeconfig, `${field}.kubeconfig`);
      content = kubeConfig.exportConfig();
    } else {
      const ref = remote.secretRef as NonNullable<RemoteConfig['secretRef']>;
      const namespace = ref.namespace ?? this.config.namespace;
      let secret: V1Secret;
      try {
        secret = await this.host.get<V1Secret>(`/api/v1/namespaces/${namespace}/secrets/${ref.name}`);
      } catch (error) {
        throw new ConfigError(
          `${field}.secretRef`,
          `cannot read Secret ${namespace}/${ref.name}: ${messageOf(error)}`,
        );
      }
      const encoded = secret.data?.[ref.key];
      if (!encoded)
        throw new ConfigError(
          `${field}.secretRef.key`,
          `Secret ${namespace}/${ref.name} has no key "${ref.key}"`,
        );
      content = Buffer.from(encoded, 'base64').toString('utf8');
      kubeConfig = kubeConfigFromString(content, `${field}.secretRef`);
    }
    const nodeName = nodeNameOf(remote);
    return {
      name: remote.name,
      nodeName,
      kubeConfig,
      labels: remote.labels,
      taints: remote.taints,
      share: remote.share,
      source: 'configuration',
      fingerprint: createHash('sha256').update(content).update(JSON.stringify(remote)).digest('hex'),
    };
  }

  get kubelet(): KubeletServer | undefined {
    return this.kubeletServer;
  }

  get webhook(): WebhookServer | undefined {
    return this.webhookServer;
  }

  /** Stops everything; virtual nodes are left to expire unless node.deleteOnShutdown is set. */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.registryInstance?.stopAll({ deleteNodes: this.config.node.deleteOnShutdown });
    this.host.close();
  }
}
