// What a remote cluster can really run: the allocatable of its Ready, schedulable nodes, minus what
// other tenants' pods request there, optionally capped by a configured share. Pure functions.
import {
  addInto,
  maxOf,
  parseQuantity,
  parseResourceList,
  type ResourceList,
  subtractClamped,
} from '../kube/quantity.ts';

/** The parts of a remote Node that capacity, labels and conditions read. */
export interface RemoteNode {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly allocatable: ResourceList;
  readonly unschedulable: boolean;
  readonly taints: readonly { key: string; effect: string; value?: string }[];
  /** Condition type → status ("True", "False", "Unknown"). */
  readonly conditions: Readonly<Record<string, string>>;
  readonly operatingSystem?: string;
  readonly architecture?: string;
  /** Where its kubelet serves resource metrics (annotation metrics.k8s.io/resource-metrics-path). */
  readonly metricsPath?: string;
}

/** The parts of a remote Pod that capacity reads. */
export interface RemotePodUsage {
  readonly nodeName: string | undefined;
  readonly requests: ResourceList;
  /** Created by this Spillway (its own delegates are already counted on the host side). */
  readonly ownDelegate: boolean;
}

/** Taints that mean "nothing new lands here" whatever the pod tolerates: node lifecycle and cordoning. */
const blockingTaint =
  /^node\.kubernetes\.io\/(not-ready|unreachable|unschedulable|network-unavailable|out-of-service)$/;
const controlPlaneTaint = /^node-role\.kubernetes\.io\/(control-plane|master)$/;

/**
 * Nodes that count: Ready, not cordoned, not a control-plane node, not tainted out by the node
 * lifecycle, and not a virtual node themselves (a remote that is itself a Spillway host would
 * otherwise count its own virtual nodes and loop capacity between clusters).
 */
export function isSchedulable(node: RemoteNode): boolean {
  if (node.unschedulable || node.conditions.Ready !== 'True') return false;
  if (node.labels.type === 'virtual-kubelet') return false;
  return !node.taints.some(
    (t) =>
      (t.effect === 'NoSchedule' || t.effect === 'NoExecute') &&
      (blockingTaint.test(t.key) || controlPlaneTaint.test(t.key)),
  );
}

interface ContainerLike {
  name?: string;
  resources?: { requests?: Record<string, string | number> };
  restartPolicy?: string;
}

/** What a pod's status says about its resources while a resize is on its way (see podRequests). */
export interface PodStatusLike {
  conditions?: { type: string; reason?: string }[];
  containerStatuses?: ContainerStatusLike[];
  initContainerStatuses?: ContainerStatusLike[];
}

interface ContainerStatusLike {
  name: string;
  allocatedResources?: Record<string, string | number>;
  resources?: { requests?: Record<string, string | number> };
}

export interface PodSpecLike {
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
  overhead?: Record<string, string | number>;
  resources?: { requests?: Record<string, string | number> };
}

/**
 * A pod's effective requests, as the scheduler computes them: app containers plus sidecars (restartable
 * init containers), or the largest init phase if that is bigger, plus overhead; pod-level requests win
 * for the resources they name. Always one `pods`. With a status, a container being resized in place
 * counts the larger of what it asks, what it was allocated and what it has (only the latter two when
 * the kubelet found the resize infeasible), as the scheduler counts it.
 */
export function podRequests(spec: PodSpecLike | undefined, status?: PodStatusLike): ResourceList {
  const statuses = new Map(
    [...(status?.containerStatuses ?? []), ...(status?.initContainerStatuses ?? [])].map((s) => [s.name, s]),
  );
  const infeasible = status?.conditions?.some(
    (c) => c.type === 'PodResizePending' && c.reason === 'Infeasible',
  );
  const requestsOf = (c: ContainerLike, resizable = true) => {
    const own = parseResourceList(c.resources?.requests);
    const actual = c.name === undefined || !resizable ? undefined : statuses.get(c.name);
    if (!actual?.resources) return own;
    const held = maxOf(
      parseResourceList(actual.resources.requests),
      parseResourceList(actual.allocatedResources),
    );
    return infeasible ? held : maxOf(own, held);
  };
  const running: ResourceList = new Map();
  for (const container of spec?.containers ?? []) addInto(running, requestsOf(container));
  let initPeak: ResourceList = new Map();
  const sidecars: ResourceList = new Map();
  for (const init of spec?.initContainers ?? []) {
    if (init.restartPolicy === 'Always') {
      addInto(sidecars, requestsOf(init));
      initPeak = maxOf(initPeak, sidecars);
    } else {
      initPeak = maxOf(initPeak, addInto(requestsOf(init, false), sidecars));
    }
  }
  let total = maxOf(addInto(running, sidecars), initPeak);
  if (spec?.resources?.requests) {
    total = new Map([...total, ...parseResourceList(spec.resources.requests)]);
  }
  addInto(total, parseResourceList(spec?.overhead));
  total.set('pods', parseQuantity(1));
  return total;
}

export interface CapacityInputs {
  readonly nodes: readonly RemoteNode[];
  readonly pods: readonly RemotePodUsage[];
  readonly share?: { readonly percent?: number; readonly max?: Readonly<Record<string, string | number>> };
}

export interface Capacity {
  /** What the virtual node advertises (capacity = allocatable): free for this host cluster. */
  readonly allocatable: ResourceList;
  /** Σ allocatable of the schedulable remote nodes, before other tenants and caps. */
  readonly total: ResourceList;
  readonly schedulableNodes: number;
}

export function computeCapacity({ nodes, pods, share }: CapacityInputs): Capacity {
  const schedulable = nodes.filter(isSchedulable);
  const names = new Set(schedulable.map((n) => n.name));
  const total: ResourceList = new Map();
  for (const node of schedulable) addInto(total, node.allocatable);
  const othersUse: ResourceList = new Map();
  for (const pod of pods) {
    if (!pod.ownDelegate && pod.nodeName && names.has(pod.nodeName)) addInto(othersUse, pod.requests);
  }
  const allocatable = subtractClamped(total, othersUse);
  for (const name of ['cpu', 'memory', 'pods']) if (!allocatable.has(name)) allocatable.set(name, 0n);
  if (share?.percent !== undefined && share.percent < 100) {
    const percent = BigInt(Math.round(share.percent * 100));
    for (const [name, value] of total) {
      const cap = (value * percent) / 10_000n;
      if ((allocatable.get(name) ?? 0n) > cap) allocatable.set(name, cap);
    }
  }
  for (const [name, value] of Object.entries(share?.max ?? {})) {
    const cap = parseQuantity(value);
    if ((allocatable.get(name) ?? 0n) > cap) allocatable.set(name, cap);
  }
  // The pod count is whole; a percentage share must not advertise 329.7 pods.
  const podCount = allocatable.get('pods') ?? 0n;
  allocatable.set('pods', podCount - (podCount % 1_000_000_000n));
  return { allocatable, total, schedulableNodes: schedulable.length };
}

/** What this node's own delegates request on schedulable remote nodes. */
export function ownDelegatesUse(nodes: readonly RemoteNode[], pods: readonly RemotePodUsage[]): ResourceList {
  const schedulable = new Set(nodes.filter(isSchedulable).map((n) => n.name));
  const use: ResourceList = new Map();
  for (const pod of pods) {
    if (pod.ownDelegate && pod.nodeName && schedulable.has(pod.nodeName)) addInto(use, pod.requests);
  }
  return use;
}

/** A remote pod as the shared remote view keeps it: whose delegate it is, if any of ours. */
export interface OwnedPodUsage {
  readonly nodeName: string | undefined;
  readonly requests: ResourceList;
  /** The virtual node (of this host cluster) whose delegate this is; undefined for any other pod. */
  readonly delegateOf: string | undefined;
}

/**
 * Pod requests summed per remote node and per owning virtual node, kept as pods come and go, so that
 * capacity and fit checks read a few entries per node instead of every pod: the same sums, in
 * O(nodes × virtual nodes). One remote cluster configured as several virtual nodes shares one of
 * these (one informer of its pods, not one per virtual node).
 */
export class UsageByNode {
  /** Remote node → owning virtual node ('' for pods that are not our delegates) → summed requests. */
  private readonly byNode = new Map<string, Map<string, ResourceList>>();

  add(pod: OwnedPodUsage): void {
    this.account(pod, 1n);
  }

  remove(pod: OwnedPodUsage): void {
    this.account(pod, -1n);
  }

  /**
   * As one virtual node sees it, one entry per remote node and kind (its own delegates; everything
   * else), as pods would be: computeCapacity and freeByNode take it as is.
   */
  list(virtualNode: string): RemotePodUsage[] {
    const usage: RemotePodUsage[] = [];
    for (const [nodeName, byOwner] of this.byNode) {
      const own = byOwner.get(virtualNode);
      const others: ResourceList = new Map();
      for (const [owner, sums] of byOwner) if (owner !== virtualNode) addInto(others, sums);
      if (own) usage.push({ nodeName, requests: new Map(own), ownDelegate: true });
      if (others.size > 0) usage.push({ nodeName, requests: others, ownDelegate: false });
    }
    return usage;
  }

  private account(pod: OwnedPodUsage, sign: 1n | -1n): void {
    if (!pod.nodeName) return;
    let byOwner = this.byNode.get(pod.nodeName);
    if (!byOwner) {
      byOwner = new Map();
      this.byNode.set(pod.nodeName, byOwner);
    }
    const owner = pod.delegateOf ?? '';
    let sums = byOwner.get(owner);
    if (!sums) {
      sums = new Map();
      byOwner.set(owner, sums);
    }
    for (const [name, value] of pod.requests) {
      const sum = (sums.get(name) ?? 0n) + sign * value;
      if (sum === 0n) sums.delete(name);
      else sums.set(name, sum);
    }
    if (sums.size === 0) byOwner.delete(owner);
    if (byOwner.size === 0) this.byNode.delete(pod.nodeName);
  }
}
