// The desired virtual Node, from the remote cluster's state and the configuration. Pure: the node
// controller compares this with the Node in the host cluster and writes only the differences.
import type { V1Node, V1NodeStatus, V1Taint } from '@kubernetes/client-node';
import { formatResourceList } from '../kube/quantity.ts';
import { LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../ownership.ts';
import { VERSION } from '../version.ts';
import { type Capacity, isSchedulable, type RemoteNode } from './capacity.ts';
import { computeConditions, type NodeCondition, type RemoteReachability } from './conditions.ts';
import { nodeLabels } from './labels.ts';

export const ANNOTATION_OWNER = 'spillway.dev/owner';
export const ANNOTATION_MANAGED_LABELS = 'spillway.dev/managed-labels';
export const ANNOTATION_MANAGED_TAINTS = 'spillway.dev/managed-taints';
export const ANNOTATION_REMOTE_VERSION = 'spillway.dev/remote-kubernetes-version';
export const ANNOTATION_REMOTE_NODES = 'spillway.dev/remote-node-count';
export const ANNOTATION_REMOTE_SCHEDULABLE_NODES = 'spillway.dev/remote-schedulable-node-count';
export const ANNOTATION_REMOTE_SERVER = 'spillway.dev/remote-server';

export interface NodeInputs {
  readonly nodeName: string;
  readonly hostClusterName: string;
  readonly remoteName: string;
  readonly server: string;
  readonly kubeletAddress: string;
  readonly kubeletPort: number;
  readonly taints: readonly V1Taint[];
  readonly configuredLabels: readonly Readonly<Record<string, string>>[];
  readonly excludeLabels: RegExp;
  readonly reachability: RemoteReachability;
  /** The remote's nodes as last seen (kept through an outage, so capacity does not collapse). */
  readonly remoteNodes: readonly RemoteNode[];
  readonly capacity: Capacity;
  /** The remote's Kubernetes version, e.g. v1.36.3 (undefined until first reached). */
  readonly remoteVersion: string | undefined;
  /** Used for kubeletVersion until the remote's version is known. */
  readonly fallbackVersion: string;
  readonly bootId: string;
}

/** The owner marker that says "this node is this host cluster's Spillway's, for this remote". */
export function ownerOf(hostClusterName: string, remoteName: string): string {
  return `${hostClusterName}/${remoteName}`;
}

/** Whether this Spillway may touch the node: it carries our marker for our host cluster. */
export function isOwnedBy(node: V1Node | undefined, hostClusterName: string): boolean {
  const owner = node?.metadata?.annotations?.[ANNOTATION_OWNER];
  return (
    node?.metadata?.labels?.[LABEL_MANAGED_BY] === MANAGED_BY_VALUE &&
    owner !== undefined &&
    owner.split('/')[0] === hostClusterName
  );
}

/** A Kubernetes version with Spillway's build attached, still parseable as semver for skew checks. */
export function kubeletVersion(remoteVersion: string): string {
  const base = /^v?\d+\.\d+\.\d+/.exec(remoteVersion)?.[0] ?? 'v0.0.0';
  return `${base.startsWith('v') ? base : `v${base}`}-spillway.${VERSION}`;
}

export interface DesiredNode {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly taints: V1Taint[];
  readonly conditions: NodeCondition[];
  readonly status: Omit<V1NodeStatus, 'conditions'>;
}

export function desiredNode(inputs: NodeInputs): DesiredNode {
  const schedulable = inputs.remoteNodes.filter(isSchedulable);
  const labels = nodeLabels({
    nodeName: inputs.nodeName,
    remoteName: inputs.remoteName,
    schedulableNodes: schedulable,
    exclude: inputs.excludeLabels,
    configured: inputs.configuredLabels,
  });
  const resources = formatResourceList(inputs.capacity.allocatable);
  const os = labels['kubernetes.io/os'] as string;
  const arch = labels['kubernetes.io/arch'] as string;
  return {
    labels,
    annotations: {
      [ANNOTATION_OWNER]: ownerOf(inputs.hostClusterName, inputs.remoteName),
      [ANNOTATION_REMOTE_SERVER]: inputs.server,
      [ANNOTATION_REMOTE_NODES]: String(inputs.remoteNodes.length),
      [ANNOTATION_REMOTE_SCHEDULABLE_NODES]: String(schedulable.length),
      // One server serves every virtual node; metrics-server follows this to the node's own series.
      'metrics.k8s.io/resource-metrics-path': `/metrics/nodes/${inputs.nodeName}/resource`,
      ...(inputs.remoteVersion ? { [ANNOTATION_REMOTE_VERSION]: inputs.remoteVersion } : {}),
    },
    taints: inputs.taints.map((t) => ({
      key: t.key,
      ...(t.value ? { value: t.value } : {}),
      effect: t.effect,
    })),
    conditions: computeConditions({
      remoteName: inputs.remoteName,
      server: inputs.server,
      reachability: inputs.reachability,
      allNodes: inputs.remoteNodes,
      schedulableNodes: schedulable,
    }),
    status: {
      capacity: resources,
      allocatable: resources,
      // Only an address the host API server can reach for the kubelet API.
      addresses: [{ type: 'InternalIP', address: inputs.kubeletAddress }],
      daemonEndpoints: { kubeletEndpoint: { Port: inputs.kubeletPort } },
      nodeInfo: {
        architecture: arch,
        operatingSystem: os,
        bootID: inputs.bootId,
        machineID: inputs.nodeName,
        systemUUID: inputs.nodeName,
        kernelVersion: '',
        osImage: `Spillway ${VERSION} (remote cluster ${inputs.remoteName})`,
        containerRuntimeVersion: `spillway://${VERSION}`,
        kubeletVersion: kubeletVersion(inputs.remoteVersion ?? inputs.fallbackVersion),
        kubeProxyVersion: '',
      },
    },
  };
}

export function taintKey(taint: Pick<V1Taint, 'key' | 'effect'>): string {
  return `${taint.key}:${taint.effect}`;
}

/**
 * The taints to write: the node's current taints that Spillway does not manage (the node lifecycle
 * controller's not-ready/unreachable taints, an administrator's own), plus the desired ones.
 */
export function mergeTaints(
  current: readonly V1Taint[] | undefined,
  previouslyManaged: readonly string[],
  desired: readonly V1Taint[],
): V1Taint[] {
  const desiredKeys = new Set(desired.map(taintKey));
  const foreign = (current ?? []).filter(
    (t) => !previouslyManaged.includes(taintKey(t)) && !desiredKeys.has(taintKey(t)),
  );
  return [...foreign, ...desired];
}
