// Keeps one virtual Node in the host cluster equal to what its remote cluster is: registers or adopts
// it, and writes labels, taints and status only when they differ (status at most once per minimum
// interval, plus a periodic refresh as the kubelet's nodeStatusReportFrequency). Never touches a Node
// it does not own.
import { randomUUID } from 'node:crypto';
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { isConflict, isNotFound, messageOf } from '../kube/errors.ts';
import type { EventRecorder } from '../kube/events.ts';
import { Informer, trimMetadata } from '../kube/informer.ts';
import { parseResourceList } from '../kube/quantity.ts';
import { WorkQueue } from '../queue/workqueue.ts';
import { computeCapacity, ownDelegatesUse } from './capacity.ts';
import { type NodeCondition, stampConditions } from './conditions.ts';
import { managedAnnotations, normalizeTaints, splitList, statusEqual, withRemovals } from './diff.ts';
import {
  ANNOTATION_MANAGED_LABELS,
  ANNOTATION_MANAGED_TAINTS,
  type DesiredNode,
  desiredNode,
  isOwnedBy,
  mergeTaints,
} from './forge.ts';
import type { FragmentationGuard } from './fragmentation.ts';
import type { RemoteHealth } from './health.ts';
import type { RemoteView } from './remote-view.ts';

export interface NodeControllerOptions {
  readonly host: ClusterClient;
  readonly events: EventRecorder;
  readonly nodeName: string;
  readonly remoteName: string;
  readonly remoteServer: string;
  readonly hostClusterName: string;
  readonly kubeletAddress: string;
  readonly kubeletPort: number;
  readonly taints: readonly V1Taint[];
  readonly configuredLabels: readonly Readonly<Record<string, string>>[];
  readonly excludeLabels: RegExp;
  readonly share?: { percent?: number; max?: Record<string, string | number> };
  readonly statusMinIntervalMs: number;
  /** Status is rewritten at least this often even when unchanged (heartbeat times). */
  readonly statusReportIntervalMs?: number;
  readonly fallbackVersion: string;
  readonly view: RemoteView;
  /** Caps advertised resources while pods are refused for fragmentation. */
  readonly fragmentation: FragmentationGuard;
  readonly health: RemoteHealth;
  readonly logger: Logger;
}

const nodesPath = '/api/v1/nodes';
const bootId = randomUUID();

export class NodeController {
  private readonly options: NodeControllerOptions;
  private readonly hostNode: Informer<V1Node>;
  private readonly queue: WorkQueue;
  /** Our last write, used until the informer shows it (so we never act on our own stale view). */
  private pending: { node: V1Node; at: number } | undefined;
  private lastStatusWrite = 0;
  private readonly flushWaiters: (() => void)[] = [];
  private reportedForeign = false;
  private startedAt = Date.now();
  /** Status writes so far (tests and metrics read it). */
  statusWrites = 0;

  constructor(options: NodeControllerOptions) {
    if (!options.nodeName) throw new Error('node controller: missing node name');
    this.options = options;
    this.hostNode = new Informer<V1Node>({
      name: `host/node/${options.nodeName}`,
      client: options.host,
      path: nodesPath,
      fieldSelector: `metadata.name=${options.nodeName}`,
      transform: trimMetadata,
      logger: options.logger,
    });
    this.hostNode.on((_event, node) => {
      if (this.pending && node.metadata?.resourceVersion === this.pending.node.metadata?.resourceVersion) {
        this.pending = undefined;
      }
      this.enqueue();
    });
    this.queue = new WorkQueue({
      name: `node/${options.nodeName}`,
      workers: 1,
      logger: options.logger,
      reconcile: () => this.reconcile(),
    });
  }

  start(signal: AbortSignal): void {
    this.startedAt = Date.now();
    this.hostNode.start(signal);
    this.queue.start(signal);
    this.enqueue();
  }

  enqueue(): void {
    this.queue.add(this.options.nodeName);
  }

  /** The node as we know it: our own last write until the informer catches up, else the informer's copy. */
  current(): V1Node | undefined {
    if (this.pending && Date.now() - this.pending.at > 10_000) this.pending = undefined;
    return this.pending?.node ?? this.hostNode.get(this.options.nodeName);
  }

  nodeUid(): string | undefined {
    const node = this.current();
    return node && isOwnedBy(node, this.options.hostClusterName) ? node.metadata?.uid : undefined;
  }

  /**
   * The node we want. Until the remote's informers have synced (a restart, or a remote down since
   * start), capacity is kept from the current node rather than computed from an empty view.
   */
  private desired(current: V1Node | undefined): DesiredNode {
    const o = this.options;
    const remoteNodes = o.view.remoteNodes();
    const pods = o.view.podUsage();
    const computed = computeCapacity({ nodes: remoteNodes, pods, share: o.share });
    const kept = current?.status?.allocatable;
    const capacity =
      o.view.synced || !kept
        ? {
            ...computed,
            allocatable: o.fragmentation.cap(computed.allocatable, ownDelegatesUse(remoteNodes, pods)),
          }
        : { ...computed, allocatable: parseResourceList(kept as Record<string, string>) };
    return desiredNode({
      nodeName: o.nodeName,
      hostClusterName: o.hostClusterName,
      remoteName: o.remoteName,
      server: o.remoteServer,
      kubeletAddress: o.kubeletAddress,
      kubeletPort: o.kubeletPort,
      taints: o.taints,
      configuredLabels: o.configuredLabels,
      excludeLabels: o.excludeLabels,
      reachability: o.health.reachability(),
      remoteNodes,
      capacity,
      remoteVersion: o.health.version,
      fallbackVersion: o.fallbackVersion,
      bootId,
    });
  }

  /**
   * Writes the node's status now, without waiting out the coalescing interval, and resolves once the
   * node has been reconciled: a pod refused for fragmentation waits for the capped capacity to be
   * written before it fails, so the scheduler never sends its replacement to the same dead end.
   */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      this.flushWaiters.push(resolve);
      this.enqueue();
    });
  }

  private async reconcile(): Promise<{ requeueAfter?: number }> {
    const waiters = this.flushWaiters.splice(0);
    let result: { requeueAfter?: number };
    try {
      result = await this.reconcileOnce(waiters.length > 0);
    } catch (error) {
      // Not written (a conflict, say): whoever waits, waits for the retry.
      this.flushWaiters.unshift(...waiters);
      throw error;
    }
    for (const resolve of waiters) resolve();
    return result;
  }

  private async reconcileOnce(urgent: boolean): Promise<{ requeueAfter?: number }> {
    if (!this.hostNode.hasSynced) return { requeueAfter: 200 };
    // Nothing is known before the first probe; writing then would flap the node NotReady on every restart.
    if (!this.options.health.probed) return { requeueAfter: 200 };
    const reachable = this.options.health.reachability().state === 'reachable';
    const now = Date.now();
    if (reachable && !this.options.view.synced && now - this.startedAt < 15_000) return { requeueAfter: 200 };
    const current = this.current();
    // Not answered yet since this process started (a restart, or a takeover by another replica) but
    // within the grace period: a node that is Ready stays so, as it would for a running Spillway
    // whose remote is slow to answer; only the grace running out makes it NotReady.
    const connecting = this.options.health.reachability().state === 'connecting';
    const ready = current?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (connecting && ready && isOwnedBy(current, this.options.hostClusterName)) return { requeueAfter: 500 };
    const desired = this.desired(current);
    const reportInterval = this.options.statusReportIntervalMs ?? 5 * 60_000;
    if (!current) {
      await this.register(desired);
      return { requeueAfter: reportInterval };
    }
    if (!isOwnedBy(current, this.options.hostClusterName)) {
      this.reportForeign(current);
      return { requeueAfter: 30_000 };
    }
    // Shared remote labels are unknown until the remote's nodes are listed; keep the current ones meanwhile.
    if (this.options.view.synced) await this.syncMetadata(current, desired);

    const node = this.current() ?? current;
    const heartbeat = Date.parse(
      (node.status?.conditions?.find((c) => c.type === 'Ready')?.lastHeartbeatTime as unknown as string) ??
        '',
    );
    const stale = !Number.isFinite(heartbeat) || now - heartbeat >= reportInterval;
    if (!stale && statusEqual(node, desired)) return { requeueAfter: reportInterval - (now - heartbeat) };
    const wait = this.lastStatusWrite + this.options.statusMinIntervalMs - now;
    if (wait > 0 && !urgent) return { requeueAfter: wait };
    await this.writeStatus(node, desired);
    return { requeueAfter: reportInterval };
  }

  private async register(desired: DesiredNode): Promise<void> {
    const now = new Date().toISOString();
    const body: V1Node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.options.nodeName,
        labels: desired.labels,
        annotations: managedAnnotations(desired),
      },
      spec: { taints: desired.taints, providerID: `spillway://${this.options.remoteName}` },
      status: { ...desired.status, conditions: stampConditions(desired.conditions, undefined, now) as never },
    };
    try {
      const created = await this.options.host.create<V1Node>(nodesPath, body);
      this.remember(created);
      this.lastStatusWrite = Date.now();
      this.statusWrites++;
      this.options.logger.info({ node: this.options.nodeName }, 'registered virtual node');
      void this.options.events.record(
        nodeTarget(created),
        'Normal',
        'RegisteredNode',
        `Node ${this.options.nodeName} registered by Spillway`,
      );
    } catch (error) {
      throw new Error(`registering node ${this.options.nodeName}`, { cause: error });
    }
  }

  private reportForeign(node: V1Node): void {
    if (this.reportedForeign) return;
    this.reportedForeign = true;
    const message = `node ${this.options.nodeName} exists and is not Spillway's (host cluster ${this.options.hostClusterName}); leaving it alone. Remove it or choose another nodeName for remote ${this.options.remoteName}.`;
    this.options.logger.error({ node: this.options.nodeName }, message);
    void this.options.events.record(nodeTarget(node), 'Warning', 'NodeNotOwned', message);
  }

  private async syncMetadata(current: V1Node, desired: DesiredNode): Promise<void> {
    const annotations = current.metadata?.annotations ?? {};
    const previousLabels = splitList(annotations[ANNOTATION_MANAGED_LABELS]);
    const previousTaints = splitList(annotations[ANNOTATION_MANAGED_TAINTS]);
    const labels: Record<string, string | null> = {};
    for (const key of previousLabels) if (!(key in desired.labels)) labels[key] = null;
    for (const [key, value] of Object.entries(desired.labels)) {
      if (current.metadata?.labels?.[key] !== value) labels[key] = value;
    }
    const wantedAnnotations = managedAnnotations(desired);
    const annotationPatch: Record<string, string> = {};
    for (const [key, value] of Object.entries(wantedAnnotations))
      if (annotations[key] !== value) annotationPatch[key] = value;
    const taints = mergeTaints(current.spec?.taints, previousTaints, desired.taints);
    const taintsChanged =
      JSON.stringify(normalizeTaints(taints)) !== JSON.stringify(normalizeTaints(current.spec?.taints ?? []));
    if (Object.keys(labels).length === 0 && Object.keys(annotationPatch).length === 0 && !taintsChanged)
      return;
    try {
      const patched = await this.options.host.patch<V1Node>(
        `${nodesPath}/${this.options.nodeName}`,
        {
          // The resourceVersion makes this a compare-and-swap: the taints we write keep others' taints.
          metadata: {
            resourceVersion: current.metadata?.resourceVersion,
            labels,
            annotations: annotationPatch,
          },
          ...(taintsChanged ? { spec: { taints } } : {}),
        },
        'merge',
      );
      this.remember(patched);
    } catch (error) {
      if (isConflict(error) || isNotFound(error)) this.pending = undefined;
      throw new Error(`updating labels and taints of node ${this.options.nodeName}`, { cause: error });
    }
  }

  private async writeStatus(current: V1Node, desired: DesiredNode): Promise<void> {
    const previous = current.status?.conditions as NodeCondition[] | undefined;
    const conditions = stampConditions(desired.conditions, previous, new Date().toISOString());
    const status = {
      ...desired.status,
      // A merge patch merges maps: resources that went away (a cordoned GPU node) must be nulled out.
      capacity: withRemovals(current.status?.capacity, desired.status.capacity),
      allocatable: withRemovals(current.status?.allocatable, desired.status.allocatable),
      conditions,
    };
    try {
      const patched = await this.options.host.patch<V1Node>(
        `${nodesPath}/${this.options.nodeName}/status`,
        { metadata: { resourceVersion: current.metadata?.resourceVersion }, status },
        'merge',
      );
      this.remember(patched);
      this.lastStatusWrite = Date.now();
      this.statusWrites++;
    } catch (error) {
      if (isConflict(error) || isNotFound(error)) this.pending = undefined;
      throw new Error(`writing status of node ${this.options.nodeName}`, { cause: error });
    }
    const before = previous?.find((c) => c.type === 'Ready');
    const after = conditions.find((c) => c.type === 'Ready');
    if (after && before?.status !== after.status) {
      const reason = after.status === 'True' ? 'NodeReady' : 'NodeNotReady';
      void this.options.events.record(
        nodeTarget(current),
        after.status === 'True' ? 'Normal' : 'Warning',
        reason,
        `${after.reason}: ${after.message}`,
      );
      this.options.logger.info(
        { node: this.options.nodeName, ready: after.status, reason: after.reason },
        after.message,
      );
    }
  }

  private remember(node: V1Node): void {
    this.pending = { node, at: Date.now() };
  }

  /** Marks the node unschedulable (its remote is being drained): the scheduler places nothing new there. */
  async cordon(): Promise<void> {
    const node = this.current();
    if (!node || !isOwnedBy(node, this.options.hostClusterName) || node.spec?.unschedulable) return;
    const patched = await this.options.host.patch<V1Node>(
      `${nodesPath}/${this.options.nodeName}`,
      // The UID makes it a precondition: never a namesake's node.
      { metadata: { uid: node.metadata?.uid }, spec: { unschedulable: true } },
      'merge',
    );
    this.remember(patched);
  }

  /** Deletes the node if it is ours (UID precondition: never a namesake someone else created). */
  async deleteNode(): Promise<void> {
    // The cache may not hold the node (stopped before its first event): ask the API server then.
    const node =
      this.current() ??
      (await this.options.host
        .get<V1Node>(`${nodesPath}/${this.options.nodeName}`, { attempts: 2 })
        .catch(() => undefined));
    if (!node || !isOwnedBy(node, this.options.hostClusterName)) {
      this.options.logger.info({ node: this.options.nodeName }, 'no node of ours to delete');
      return;
    }
    try {
      await this.options.host.delete(`${nodesPath}/${this.options.nodeName}`, {
        preconditions: { uid: node.metadata?.uid },
      });
      this.options.logger.info({ node: this.options.nodeName }, 'deleted virtual node');
    } catch (error) {
      if (!isNotFound(error)) {
        this.options.logger.warn(
          { node: this.options.nodeName, err: messageOf(error) },
          'could not delete virtual node',
        );
      }
    }
  }
}

function nodeTarget(node: V1Node) {
  return { kind: 'Node', name: node.metadata?.name ?? '', uid: node.metadata?.uid };
}
