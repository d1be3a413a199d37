// The virtual node advertises the sum of what its remote cluster has free, but a pod runs on one remote
// node: a 4-CPU pod does not fit three nodes with 3 CPUs free each, though the sum says 9. Spillway
// refuses such a pod as a kubelet would (OutOfcpu, so its controller replaces it) and, while that
// fragmentation lasts, caps what the node advertises for that resource at what it already runs plus
// the largest free slot, so the scheduler stops sending pods that cannot fit (no create/refuse loop).
// Pure functions.
import { addInto, formatQuantity, type ResourceList, styleFor, subtractClamped } from '../kube/quantity.ts';
import { isSchedulable, type RemoteNode, type RemotePodUsage } from './capacity.ts';

/** What each schedulable remote node has free: its allocatable minus what every pod on it requests. */
export function freeByNode(
  nodes: readonly RemoteNode[],
  pods: readonly RemotePodUsage[],
): Map<string, ResourceList> {
  const used = new Map<string, ResourceList>();
  for (const pod of pods) {
    if (!pod.nodeName) continue;
    const list = used.get(pod.nodeName) ?? new Map<string, bigint>();
    used.set(pod.nodeName, addInto(list, pod.requests));
  }
  const free = new Map<string, ResourceList>();
  for (const node of nodes) {
    if (!isSchedulable(node)) continue;
    free.set(node.name, subtractClamped(new Map(node.allocatable), used.get(node.name) ?? new Map()));
  }
  return free;
}

/** Per resource, the most that any single node has free. */
export function largestFree(free: ReadonlyMap<string, ResourceList>): ResourceList {
  const largest: ResourceList = new Map();
  for (const list of free.values()) {
    for (const [name, value] of list) if (value > (largest.get(name) ?? 0n)) largest.set(name, value);
  }
  return largest;
}

export interface FitRefusal {
  /** The resource that does not fit, as the kubelet names it in a reason: `OutOf<resource>`. */
  readonly resource: string;
  readonly requested: bigint;
  /** The most of it any one node has free. */
  readonly largestFree: bigint;
}

/** Why no single remote node can take these requests, or undefined when one can. */
export function fitRefusal(
  requests: ResourceList,
  free: ReadonlyMap<string, ResourceList>,
): FitRefusal | undefined {
  const fits = (list: ResourceList) =>
    [...requests].every(([name, value]) => value <= 0n || value <= (list.get(name) ?? 0n));
  if ([...free.values()].some(fits)) return undefined;
  const largest = largestFree(free);
  // Name a resource no node has enough of; if each fits somewhere but never all on one node, the
  // first that fails on the node with the most CPU free.
  for (const [name, value] of requests) {
    if (value > (largest.get(name) ?? 0n))
      return { resource: name, requested: value, largestFree: largest.get(name) ?? 0n };
  }
  const roomiest = [...free.values()].sort((a, b) => Number((b.get('cpu') ?? 0n) - (a.get('cpu') ?? 0n)))[0];
  for (const [name, value] of requests) {
    const available = roomiest?.get(name) ?? 0n;
    if (value > available) return { resource: name, requested: value, largestFree: available };
  }
  return undefined;
}

export function describeRefusal(refusal: FitRefusal, remoteName: string): string {
  const style = styleFor(refusal.resource);
  return (
    `Pod was rejected: no node of remote cluster ${remoteName} has enough ${refusal.resource} ` +
    `(requested ${formatQuantity(refusal.requested, style)}, ` +
    `at most ${formatQuantity(refusal.largestFree, style)} free on one node)`
  );
}

/**
 * Caps the advertised allocatable of each resource a pod was refused for, while the largest free
 * slot is still smaller than that pod: what this node's delegates already use plus the largest slot.
 * Returns the resources whose fragmentation has passed (to forget).
 */
export function capForFragmentation(
  allocatable: ResourceList,
  ownUse: ResourceList,
  largest: ResourceList,
  refused: ReadonlyMap<string, bigint>,
): { allocatable: ResourceList; resolved: string[] } {
  const capped = new Map(allocatable);
  const resolved: string[] = [];
  for (const [name, size] of refused) {
    const slot = largest.get(name) ?? 0n;
    if (slot >= size) {
      resolved.push(name);
      continue;
    }
    const cap = (ownUse.get(name) ?? 0n) + slot;
    if ((capped.get(name) ?? 0n) > cap) capped.set(name, cap);
  }
  return { allocatable: capped, resolved };
}

/** What the guard reads of the remote (RemoteView). */
export interface RemoteNodesAndPods {
  readonly synced: boolean;
  remoteNodes(): RemoteNode[];
  podUsage(): RemotePodUsage[];
}

/** Free slots are recomputed at most this often while pods are admitted in a burst. */
const FREE_CACHE_MS = 1_000;

/**
 * Shared by a remote's pod admission (which refuses what fits no node) and its virtual node (which
 * caps what it advertises while a refusal's fragmentation lasts).
 */
export class FragmentationGuard {
  private readonly view: RemoteNodesAndPods;
  private readonly onRefusal: () => void;
  /** Per resource, the largest request refused for lack of a node to fit it. */
  private readonly refused = new Map<string, bigint>();
  private cache: { at: number; free: Map<string, ResourceList> } | undefined;

  constructor(view: RemoteNodesAndPods, onRefusal: () => void) {
    this.view = view;
    this.onRefusal = onRefusal;
  }

  private free(fresh: boolean): Map<string, ResourceList> {
    if (!fresh && this.cache && Date.now() - this.cache.at < FREE_CACHE_MS) return this.cache.free;
    const free = freeByNode(this.view.remoteNodes(), this.view.podUsage());
    this.cache = { at: Date.now(), free };
    return free;
  }

  /** Whether a pod with these requests fits some remote node; a refusal is remembered for the cap. */
  check(requests: ResourceList): FitRefusal | undefined {
    // Before the remote's nodes and pods are listed (a restart), nothing is known: refuse nothing.
    if (!this.view.synced) return undefined;
    const free = this.free(false);
    // No schedulable remote node at all (all NotReady a moment, after the remote's API server came
    // back, or cordoned) is an unavailable remote, not a fragmented one: the pod waits for the remote's
    // scheduler rather than failing (the virtual node says NoSchedulableRemoteNodes meanwhile).
    if (free.size === 0) return undefined;
    const refusal = fitRefusal(requests, free);
    if (refusal) {
      if (refusal.requested > (this.refused.get(refusal.resource) ?? 0n))
        this.refused.set(refusal.resource, refusal.requested);
      this.onRefusal();
    }
    return refusal;
  }

  /** The allocatable to advertise, given what this node's delegates use on schedulable nodes. */
  cap(allocatable: ResourceList, ownUse: ResourceList): ResourceList {
    if (this.refused.size === 0) return allocatable;
    const capped = capForFragmentation(allocatable, ownUse, largestFree(this.free(true)), this.refused);
    for (const name of capped.resolved) this.refused.delete(name);
    return capped.allocatable;
  }

  /** Resources currently capped (for the node's annotation and tests). */
  get cappedResources(): string[] {
    return [...this.refused.keys()];
  }
}
