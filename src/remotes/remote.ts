// Everything Spillway runs for one remote cluster: its client, its informers, the health probe, the
// virtual node and its lease. Remotes are independent: one failing never affects another.
//
// Two ways a remote ends, never to be confused:
// - stop(): a hand-over. Every loop stops; nothing is written, nothing deleted. Used when another
//   replica takes the remote over, when its settings change (it starts again at once), and at shutdown.
// - drain(): the remote is leaving the configuration. Its node is cordoned, its delegates and reflected
//   copies are deleted in the remote (UID preconditions, only objects carrying our marks), each host pod
//   is failed with reason RemoteClusterRemoved once its delegate is gone (its controller replaces it),
//   then the node is deleted. A remote that cannot be reached is waited for; see also forceRemove().
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1Taint } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { type Fence, fencedClient } from '../ha/fence.ts';
import { ClusterClient, spillwayUserAgent } from '../kube/client.ts';
import type { KubeConfig } from '../kube/credentials.ts';
import { messageOf } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import { NodeController } from '../node/controller.ts';
import { FragmentationGuard } from '../node/fragmentation.ts';
import { RemoteHealth } from '../node/health.ts';
import { LeaseHeartbeat } from '../node/lease.ts';
import type { RemoteView } from '../node/remote-view.ts';
import { PodController } from '../pods/controller.ts';
import type { HostObjects } from '../pods/host-objects.ts';
import { TAINT_OUT_OF_SERVICE } from '../pods/plan.ts';
import type { WorkloadCaches } from '../workloads.ts';
import type { RemoteViews } from './views.ts';

/** Labels only a virtual node has; a pod's selector on them is dropped from its delegate. */
const VIRTUAL_NODE_LABEL_KEYS = ['type', 'kubernetes.io/role', 'kubernetes.io/hostname'];

export interface RemoteSpec {
  readonly name: string;
  readonly nodeName: string;
  readonly kubeConfig: KubeConfig;
  readonly labels: Readonly<Record<string, string>>;
  readonly taints?: readonly V1Taint[];
  readonly share?: { percent?: number; max?: Record<string, string | number> };
  /** Where it came from: the configuration file, or a discovered Secret (namespace/name). */
  readonly source: string;
  /** Changes when anything above changes but the credentials; a new fingerprint restarts the remote. */
  readonly fingerprint: string;
  /** Changes with the credentials (token, certificates, CA) alone: they are swapped in, no restart. */
  readonly credentials?: string;
}

export interface RemoteContext {
  readonly config: Config;
  readonly host: ClusterClient;
  readonly events: EventRecorder;
  readonly logger: Logger;
  /** The host API server's version, used as kubeletVersion until the remote's own is known. */
  readonly hostVersion: string;
  /** The host's ConfigMaps and Secrets, watched once and shared by every remote. */
  readonly hostObjects: HostObjects;
  /** The host's Namespaces, Services, claims…, watched once and shared by every remote. */
  readonly workloads: WorkloadCaches;
  /** Each remote cluster's nodes and pods, watched once however many virtual nodes it backs. */
  readonly views: RemoteViews;
}

export class RemoteCluster {
  /** Replaced only by useCredentials. */
  spec: RemoteSpec;
  readonly client: ClusterClient;
  readonly view: RemoteView;
  readonly health: RemoteHealth;
  readonly node: NodeController;
  readonly lease: LeaseHeartbeat;
  readonly pods: PodController;
  private readonly controller = new AbortController();
  private readonly logger: Logger;
  private readonly context: RemoteContext;

  constructor(spec: RemoteSpec, context: RemoteContext, fence?: Fence) {
    const { config } = context;
    this.spec = spec;
    this.context = context;
    this.logger = context.logger.child({ remote: spec.name, node: spec.nodeName });
    // High availability: every write for this remote, to either cluster, is fenced by its Lease.
    const fenced = (client: ClusterClient) => (fence ? fencedClient(client, fence) : client);
    const host = fenced(context.host);
    this.client = fenced(
      new ClusterClient({
        name: spec.name,
        kubeConfig: spec.kubeConfig,
        logger: this.logger,
        qps: config.remoteQps,
        burst: config.remoteBurst,
        userAgent: spillwayUserAgent(config.hostClusterName, spec.name),
      }),
    );
    const enqueueNode = () => this.node.enqueue();
    this.view = context.views.view({
      remoteName: spec.name,
      nodeName: spec.nodeName,
      kubeConfig: () => this.spec.kubeConfig,
      onChange: enqueueNode,
    });
    this.health = new RemoteHealth({
      client: this.client,
      logger: this.logger,
      intervalMs: config.node.probeIntervalSeconds * 1000,
      graceMs: config.node.remoteUnreachableGraceSeconds * 1000,
      onChange: enqueueNode,
      // Back from an outage, however short: informers reconnect now rather than after their back-off,
      // and every pod is looked at again (statuses from what the remote shows now, Terminating host
      // pods finalised once their delegates are gone, orphans collected).
      onRecovered: () => {
        this.view.wake();
        this.pods.wake();
        this.pods.requeueAll();
      },
    });
    const fragmentation = new FragmentationGuard(this.view, enqueueNode);
    this.node = new NodeController({
      host,
      events: context.events,
      nodeName: spec.nodeName,
      remoteName: spec.name,
      remoteServer: this.client.server,
      hostClusterName: config.hostClusterName,
      kubeletAddress: config.kubelet.address,
      kubeletPort: config.kubelet.port,
      taints: spec.taints ?? config.node.taints,
      configuredLabels: [config.node.labels, spec.labels],
      excludeLabels: new RegExp(config.node.excludeLabels),
      share: spec.share,
      statusMinIntervalMs: config.node.statusMinIntervalSeconds * 1000,
      fallbackVersion: context.hostVersion,
      view: this.view,
      fragmentation,
      health: this.health,
      logger: this.logger,
    });
    const taints = spec.taints ?? config.node.taints;
    this.pods = new PodController({
      host,
      remote: this.client,
      events: context.events,
      hostClusterName: config.hostClusterName,
      remoteName: spec.name,
      nodeName: spec.nodeName,
      kubeletAddress: config.kubelet.address,
      pods: config.pods,
      virtualOnlyLabelKeys: new Set([
        ...VIRTUAL_NODE_LABEL_KEYS,
        ...Object.keys(config.node.labels),
        ...Object.keys(spec.labels),
      ]),
      virtualTaintKeys: new Set(taints.map((t) => t.key)),
      fit: (requests) => fragmentation.check(requests),
      capacityRefused: () =>
        Promise.race([this.node.flush(), new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref())]),
      hostObjects: context.hostObjects,
      workloads: context.workloads,
      config,
      reachability: () => this.health.reachability().state,
      nodeOutOfService: () =>
        this.node.current()?.spec?.taints?.some((t) => t.key === TAINT_OUT_OF_SERVICE) === true,
      logger: this.logger,
    });
    this.lease = new LeaseHeartbeat({
      client: host,
      nodeName: spec.nodeName,
      durationSeconds: config.node.leaseDurationSeconds,
      renewIntervalMs: config.node.leaseRenewIntervalSeconds * 1000,
      logger: this.logger,
      nodeUid: () => this.node.nodeUid(),
    });
  }

  get name(): string {
    return this.spec.name;
  }

  /** A rotated credential for the same remote: swapped into the client, nothing restarts. */
  useCredentials(spec: RemoteSpec): void {
    this.client.useCredentials(spec.kubeConfig);
    this.context.views.useCredentials(spec.nodeName, spec.kubeConfig);
    this.spec = spec;
    this.logger.info({ source: spec.source }, 'remote cluster credentials replaced without a restart');
  }

  start(): void {
    const signal = this.controller.signal;
    this.logger.info({ server: this.client.server, source: this.spec.source }, 'starting remote cluster');
    this.health.start(signal);
    this.view.start(signal);
    this.node.start(signal);
    this.lease.start(signal);
    this.pods.start(signal);
    void this.reportVerified(signal);
  }

  /**
   * Logs once every pod has been reconciled with both caches full since start (after a restart:
   * every delegate adopted or created, every status checked), with how long that took.
   */
  private async reportVerified(signal: AbortSignal): Promise<void> {
    const started = Date.now();
    await Promise.all([this.pods.hostPods.ready, this.pods.delegates.ready]);
    // Keys deferred for a moment (the other cache was not synced yet) still count; backstops do not.
    await this.pods.queue.idle({ dueWithinMs: 2_000 });
    if (signal.aborted) return;
    this.logger.info(
      {
        pods: this.pods.hostPods.size,
        delegates: this.pods.delegates.size,
        ms: Date.now() - started,
      },
      'every pod verified since start',
    );
  }

  private async cordon(): Promise<boolean> {
    try {
      await this.node.cordon();
      return true;
    } catch (error) {
      this.logger.info({ err: messageOf(error) }, 'could not cordon the node yet');
      return false;
    }
  }

  /** Hand-over: stops every loop for this remote; writes nothing, deletes nothing. */
  async stop(): Promise<void> {
    if (this.controller.signal.aborted) return;
    this.controller.abort();
    this.client.close();
    this.logger.info('stopped remote cluster');
  }

  /**
   * Removes the remote: see the top of this file. Resolves once its node is deleted, then stops it;
   * an aborted signal (a shutdown) ends the wait, and the drain resumes at the next start.
   */
  async drain(signal: AbortSignal): Promise<void> {
    this.logger.info('draining remote cluster: deleting its delegates and copies, then its node');
    const until = AbortSignal.any([signal, this.controller.signal]);
    // Cordoned first (for a moment at most), so replacements of the pods failed below go elsewhere.
    let cordoned = await this.cordon();
    for (let i = 0; i < 20 && !cordoned && !until.aborted; i++) {
      await sleep(500, undefined, { signal: until }).catch(() => {});
      cordoned = await this.cordon();
    }
    this.pods.drain();
    let lastReport = Date.now();
    while (!until.aborted && !this.pods.drained) {
      if (!cordoned) cordoned = await this.cordon();
      if (Date.now() - lastReport > 30_000) {
        lastReport = Date.now();
        const state = this.health.reachability().state;
        this.logger.warn(
          { reachability: state, delegates: this.pods.delegates.size },
          state === 'reachable'
            ? 'still draining remote cluster'
            : 'remote cluster cannot be reached; its drain waits for it (a remote gone for good is removed with force)',
        );
      }
      await sleep(500, undefined, { signal: until }).catch(() => {});
    }
    if (until.aborted) return;
    // Every loop stops before the node goes: a node controller still running would register it again.
    await this.stop();
    await this.node.deleteNode();
    this.logger.info('drained remote cluster: its delegates, copies and node are gone');
  }
}
