// What a virtual node needs to know about its remote cluster, kept by two informers: the remote's
// nodes, and its running pods trimmed to their requests (a few hundred bytes each, not kilobytes).
// The informers belong to the cluster, not to a virtual node (ClusterView): a remote configured as
// several virtual nodes is watched once, and each node reads it through its own RemoteView.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { Informer } from '../kube/informer.ts';
import { parseResourceList, resourceListsEqual } from '../kube/quantity.ts';
import { isOwnedObject, LABEL_VIRTUAL_NODE } from '../ownership.ts';
import {
  type OwnedPodUsage,
  type PodStatusLike,
  podRequests,
  type RemoteNode,
  type RemotePodUsage,
  UsageByNode,
} from './capacity.ts';

interface TrimmedNode extends RemoteNode {
  metadata: { name: string; resourceVersion?: string };
}

interface TrimmedPod extends OwnedPodUsage {
  metadata: { name?: string; namespace?: string; resourceVersion?: string };
}

export function trimNode(node: V1Node): TrimmedNode {
  const conditions: Record<string, string> = {};
  for (const condition of node.status?.conditions ?? []) conditions[condition.type] = condition.status;
  const name = node.metadata?.name ?? '';
  return {
    metadata: { name, resourceVersion: node.metadata?.resourceVersion },
    name,
    labels: node.metadata?.labels ?? {},
    allocatable: parseResourceList(node.status?.allocatable as Record<string, string> | undefined),
    unschedulable: node.spec?.unschedulable === true,
    taints: (node.spec?.taints ?? []).map((t) => ({ key: t.key, effect: t.effect, value: t.value })),
    conditions,
    operatingSystem: node.status?.nodeInfo?.operatingSystem,
    architecture: node.status?.nodeInfo?.architecture,
    metricsPath: node.metadata?.annotations?.['metrics.k8s.io/resource-metrics-path'],
  };
}

export function trimPod(pod: V1Pod, hostClusterName: string): TrimmedPod {
  return {
    metadata: {
      name: pod.metadata?.name,
      namespace: pod.metadata?.namespace,
      resourceVersion: pod.metadata?.resourceVersion,
    },
    nodeName: pod.spec?.nodeName,
    requests: podRequests(pod.spec as Parameters<typeof podRequests>[0], pod.status as PodStatusLike),
    // A virtual node's own delegates are counted on the host side already (they are its pods).
    delegateOf: isOwnedObject(pod.metadata?.labels, hostClusterName)
      ? pod.metadata?.labels?.[LABEL_VIRTUAL_NODE] || undefined
      : undefined,
  };
}

/** One remote cluster's nodes and running pods, watched once however many virtual nodes read them. */
export class ClusterView {
  readonly nodes: Informer<V1Node, TrimmedNode>;
  readonly pods: Informer<V1Pod, TrimmedPod>;
  /**
   * Requests summed per remote node and owner, kept up to date on every pod event: capacity and fit
   * checks then cost O(nodes), not O(pods) (10,000 delegates summed on every status computation was
   * the largest CPU cost of a 10,000-pod burst).
   */
  readonly usage = new UsageByNode();
  private readonly listeners = new Set<() => void>();

  constructor(options: { client: ClusterClient; hostClusterName: string; logger: Logger }) {
    const { client, hostClusterName, logger } = options;
    this.nodes = new Informer<V1Node, TrimmedNode>({
      name: `${client.name}/nodes`,
      client,
      path: '/api/v1/nodes',
      transform: trimNode,
      logger,
    });
    this.pods = new Informer<V1Pod, TrimmedPod>({
      name: `${client.name}/pods-usage`,
      client,
      path: '/api/v1/pods',
      // Finished pods request nothing; leaving them out keeps the cache small on busy clusters.
      fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed',
      transform: (pod) => trimPod(pod, hostClusterName),
      logger,
    });
    const changed = (
      event: string,
      object: TrimmedPod | TrimmedNode,
      previous: TrimmedPod | TrimmedNode | undefined,
    ) => {
      if (event === 'update' && previous && !usageChanged(object, previous)) return;
      // Every reader: one virtual node's delegates are the others' "other tenants".
      for (const listener of this.listeners) listener();
    };
    this.nodes.on(changed);
    this.pods.on((event, pod, previous) => {
      if (event !== 'add' && previous) this.usage.remove(previous);
      if (event !== 'delete') this.usage.add(pod);
    });
    this.pods.on(changed);
  }

  start(signal: AbortSignal): void {
    this.nodes.start(signal);
    this.pods.start(signal);
  }

  /** Calls back on every change that moves nodes or usage; returns the way to stop. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get synced(): boolean {
    return this.nodes.hasSynced && this.pods.hasSynced;
  }

  /** The remote answers again: reconnect now rather than after the back-off grown during the outage. */
  wake(): void {
    this.nodes.wake();
    this.pods.wake();
  }
}

/**
 * The remote as one virtual node reads it: the shared ClusterView, with this node's own delegates
 * told apart from everything else. Empty and unsynced until started; start() takes the cluster view
 * (the first reader of a cluster starts its informers, the last one to stop ends them).
 */
export class RemoteView {
  readonly nodeName: string;
  private readonly acquire: (signal: AbortSignal) => ClusterView;
  private readonly onChange: () => void;
  private cluster: ClusterView | undefined;

  constructor(options: {
    nodeName: string;
    acquire: (signal: AbortSignal) => ClusterView;
    onChange: () => void;
  }) {
    if (!options.nodeName) throw new Error('remote view: nodeName is required');
    this.nodeName = options.nodeName;
    this.acquire = options.acquire;
    this.onChange = options.onChange;
  }

  start(signal: AbortSignal): void {
    if (this.cluster) throw new Error(`remote view of ${this.nodeName} already started`);
    const cluster = this.acquire(signal);
    this.cluster = cluster;
    const unsubscribe = cluster.subscribe(this.onChange);
    signal.addEventListener('abort', unsubscribe, { once: true });
    // Already synced by another reader: this node has nothing to wait for.
    if (cluster.synced) this.onChange();
  }

  get synced(): boolean {
    return this.cluster?.synced === true;
  }

  /** The remote answers again: reconnect now rather than after the back-off grown during the outage. */
  wake(): void {
    this.cluster?.wake();
  }

  remoteNodes(): RemoteNode[] {
    return this.cluster?.nodes.list() ?? [];
  }

  remoteNode(name: string): RemoteNode | undefined {
    return this.cluster?.nodes.get(name);
  }

  /** Pod requests per remote node, summed (own delegates and others apart): what capacity reads. */
  podUsage(): RemotePodUsage[] {
    return this.cluster?.usage.list(this.nodeName) ?? [];
  }
}

/** Pod status churn (restarts, IPs) and node heartbeats matter to the virtual node only if usage moved. */
function usageChanged(a: TrimmedPod | TrimmedNode, b: TrimmedPod | TrimmedNode): boolean {
  if ('requests' in a && 'requests' in b) {
    return (
      a.nodeName !== b.nodeName ||
      !resourceListsEqual(a.requests, b.requests) ||
      a.delegateOf !== b.delegateOf
    );
  }
  return JSON.stringify(a, replacer) !== JSON.stringify(b, replacer);
}

function replacer(key: string, value: unknown): unknown {
  if (key === 'resourceVersion') return undefined;
  if (value instanceof Map) return [...value].map(([k, v]) => [k, String(v)]);
  return value;
}
