// Spillway assembled from its configuration: the host client, the remote clusters from the file and
// from discovered Secrets, each with its virtual node.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type Config, nodeNameOf, type RemoteConfig } from './config.ts';
import { RemoteOwnership } from './ha/ownership.ts';
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
import { reportRemotes } from './metrics/remotes.ts';
import { MetricsServer } from './metrics/server.ts';
import type { HostNamespaces } from './namespaces/host-namespaces.ts';
import { HostObjects } from './pods/host-objects.ts';
import { RemoteDiscovery, type RemoteSink } from './remotes/discovery.ts';
import { RemoteRegistry, type Retirement } from './remotes/registry.ts';
import type { RemoteSpec } from './remotes/remote.ts';
import type { RemoteList } from './webhook/burst.ts';
import type { WebhookServer } from './webhook/server.ts';
import { workloadCaches } from './workloads.ts';

export class Spillway {
  readonly config: Config;
  readonly host: ClusterClient;
  private readonly logger: Logger;
  private readonly controller = new AbortController();
  private registryInstance: RemoteRegistry | undefined;
  private discovery: RemoteDiscovery | undefined;
  private kubeletServer: KubeletServer | undefined;
  private webhookServer: WebhookServer | undefined;
  /** The host's namespaces (their offloading policy), once started. */
  private hostNamespaces: HostNamespaces | undefined;
  private metricsServer: MetricsServer | undefined;
  private ownershipInstance: RemoteOwnership | undefined;
  private discoveryListed = false;
  private started = false;
  private unreport: (() => void) | undefined;

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

  /** With high availability, which remotes this replica owns and whether it leads (else undefined). */
  get ownership(): RemoteOwnership | undefined {
    return this.ownershipInstance;
  }

  /**
   * Connects to the host, starts every configured remote and the discovery of remote-cluster Secrets.
   * With high availability, remotes go to the shared catalog and run only where their Lease is held.
   */
  async start(): Promise<void> {
    const { config } = this;
    const signal = this.controller.signal;
    if (config.metrics.enabled) {
      // First, so that /healthz answers while the host is still being reached.
      this.metricsServer = new MetricsServer({
        bindAddress: config.metrics.bindAddress,
        port: config.metrics.port,
        ready: () => this.started,
        logger: this.logger.child({ component: 'metrics' }),
      });
      await this.metricsServer.start(signal);
    }
    const hostVersion = await this.hostVersion();
    const events = new EventRecorder({ client: this.host, component: 'spillway', logger: this.logger });
    // One set of host ConfigMap and Secret watches for every remote.
    const hostObjects = new HostObjects({ host: this.host, logger: this.logger });
    hostObjects.start(signal);
    const workloads = workloadCaches(this.host, config.hostClusterName, this.logger, signal);
    this.hostNamespaces = workloads.namespaces;
    const registry = new RemoteRegistry({
      config,
      host: this.host,
      events,
      logger: this.logger,
      hostVersion,
      hostObjects,
      workloads,
    });
    this.registryInstance = registry;
    this.unreport = reportRemotes({
      remotes: () => registry.list(),
      leader: () => this.ownershipInstance?.isLeader ?? true,
    });
    const kubelet = config.kubelet;
    if (config.ha.enabled) {
      this.ownershipInstance = new RemoteOwnership({
        host: this.host,
        namespace: config.namespace,
        hostClusterName: config.hostClusterName,
        ha: config.ha,
        registry,
        kubeletEndpoint: `${kubelet.address}:${kubelet.port}`,
        catalogComplete: () => !config.discovery.enabled || this.discoveryListed,
        onLeader: (leading) => void this.leaderWork(leading),
        logger: this.logger,
      });
    }
    const sink: RemoteSink = this.ownershipInstance ?? registry;
    for (const [index, remote] of config.remotes.entries()) {
      if (remote.remove === 'force') {
        void retireUntilDone(sink, remote.name, { force: { nodeName: nodeNameOf(remote) } }, signal);
        continue;
      }
      const spec = await this.remoteSpec(remote, index);
      await sink.upsert(spec);
      if (remote.remove === 'drain') void retireUntilDone(sink, remote.name, { spec }, signal);
    }
    if (config.discovery.enabled) {
      this.discovery = new RemoteDiscovery({
        host: this.host,
        namespace: config.namespace,
        registry: sink,
        events,
        logger: this.logger,
        staticNames: new Set(config.remotes.map((r) => r.name)),
      });
      this.discovery.start(signal);
      void this.discovery.ready.then(() => {
        this.discoveryListed = true;
      });
    }
    // Once every remote is known (the discovered ones too), nodes left by remotes removed without a
    // drain are reported; with high availability by the leader, which knows the whole catalog.
    const configured = new Set(config.remotes.map((r) => r.name));
    void (this.discovery?.ready ?? Promise.resolve()).then(() =>
      setTimeout(() => {
        const ownership = this.ownershipInstance;
        if (ownership && !ownership.isLeader) return;
        const known = new Set([...configured, ...(ownership?.specs().map((spec) => spec.name) ?? [])]);
        void registry.reportUnknownNodes(known);
      }, 10_000).unref(),
    );
    this.kubeletServer = new KubeletServer({
      bindAddress: kubelet.bindAddress ?? kubelet.address,
      port: kubelet.port,
      host: this.host,
      resolver: new PodResolver(registry),
      certificate: new ServingCertificate({
        mode: kubelet.tls.mode,
        address: kubelet.address,
        nodeNames: () => registry.list().map((r) => r.spec.nodeName),
        host: this.host,
        logger: this.logger,
        certFile: kubelet.tls.certFile,
        keyFile: kubelet.tls.keyFile,
        approve: kubelet.tls.approveCsr,
        csrExpirationSeconds: kubelet.tls.csrExpirationSeconds,
      }),
      clientCA: kubelet.clientCAFile ? readFileSync(kubelet.clientCAFile, 'utf8') : undefined,
      limits: kubelet,
      authentication: kubelet.authentication,
      streamBufferBytes: kubelet.streamBufferBytes,
      metricsSource: kubelet.metrics.source,
      logger: this.logger.child({ component: 'kubelet' }),
    });
    await this.kubeletServer.start(signal);
    if (config.webhook.enabled) {
      // Loaded only when enabled: its certificate authority brings @peculiar/x509 (about 14 MiB).
      const { startBurstWebhook } = await import('./webhook/burst.ts');
      const { sharedWebhookAuthority } = await import('./webhook/shared-ca.ts');
      const ownership = this.ownershipInstance;
      const remotes: RemoteList = ownership
        ? { list: () => ownership.specs().map((spec) => ({ spec })) }
        : registry;
      this.webhookServer = await startBurstWebhook({
        config,
        host: this.host,
        registry: remotes,
        signal,
        logger: this.logger.child({ component: 'webhook' }),
        namespaces: workloads.namespaces,
        authority: ownership ? await sharedWebhookAuthority(this.host, config.namespace) : undefined,
        // With several replicas, the leader points the configuration at itself.
        install: ownership ? false : config.webhook.install,
      });
    }
    this.ownershipInstance?.start(signal);
    this.started = true;
    this.logger.info(
      {
        hostClusterName: config.hostClusterName,
        remotes: config.remotes.map((r) => r.name),
        namespace: config.namespace,
        ...(config.ha.enabled ? { replica: config.ha.identity } : {}),
      },
      'spillway started',
    );
  }

  /** Shared work, done by the leader only while it leads: the webhook configuration. */
  private async leaderWork(leading: AbortSignal): Promise<void> {
    const server = this.webhookServer;
    const namespaces = this.hostNamespaces;
    if (!server || !namespaces || !this.config.webhook.install) return;
    const { installBurstWebhook } = await import('./webhook/burst.ts');
    for (let attempt = 0; !leading.aborted; attempt++) {
      try {
        await installBurstWebhook(
          this.config,
          this.host,
          server,
          namespaces,
          this.logger.child({ component: 'webhook' }),
          leading,
        );
        return;
      } catch (error) {
        this.logger.warn(
          { err: messageOf(error), attempt },
          'installing the webhook configuration failed; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 1000 * 2 ** attempt)).unref());
      }
    }
  }

  /** The metrics endpoint, when enabled. */
  get metrics(): MetricsServer | undefined {
    return this.metricsServer;
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

  /**
   * Stops everything; virtual nodes are left to expire unless node.deleteOnShutdown is set. With high
   * availability, remotes are handed over instead: stopped, and their Leases released at once.
   */
  async stop(): Promise<void> {
    this.controller.abort();
    if (this.ownershipInstance) await this.ownershipInstance.stop();
    else await this.registryInstance?.stopAll({ deleteNodes: this.config.node.deleteOnShutdown });
    this.unreport?.();
    this.host.close();
  }
}

/**
 * A configuration entry marked for removal: asked until it is done here (with high availability, the
 * remote's owner may be another replica, or not chosen yet) or Spillway stops.
 */
async function retireUntilDone(
  sink: RemoteSink,
  name: string,
  how: Retirement,
  signal: AbortSignal,
): Promise<void> {
  while (!signal.aborted && !(await sink.retire(name, how).catch(() => false))) {
    await sleep(5_000, undefined, { signal }).catch(() => {});
  }
}
