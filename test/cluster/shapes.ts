// What a local cluster looks like: its role and its simulated nodes.

export type ClusterRole = 'host' | 'remote';

export interface SimulatedNode {
  readonly name: string;
  readonly cpu: string;
  readonly memory: string;
  readonly pods: string;
  readonly ephemeralStorage?: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** Extended resources such as `nvidia.com/gpu`, advertised in capacity and allocatable. */
  readonly extendedResources?: Readonly<Record<string, string>>;
}

export interface ClusterShape {
  readonly name: string;
  readonly role: ClusterRole;
  readonly nodes: readonly SimulatedNode[];
  /** Start the API server with --kubelet-certificate-authority, so it verifies kubelet serving certificates. */
  readonly verifyKubeletCertificates?: boolean;
  /** A real kubelet, containerd and runc as one more node (test/cluster/realnode; one per machine). */
  readonly realNode?: boolean;
  /** kwok answers exec and logs for every pod that no other rule covers (kwok/answer-every-pod.yaml). */
  readonly answerEveryPod?: boolean;
  /** The API server writes an audit log of pod deletions and evictions (logs/audit.log): who deleted what. */
  readonly auditPodDeletions?: boolean;
}

export const DEFAULT_NODE_RESOURCES = {
  cpu: '4',
  memory: '16Gi',
  pods: '110',
  ephemeralStorage: '100Gi',
} as const;

export function regionOf(clusterName: string): string {
  return `region-${clusterName}`;
}

/** A host cluster: ordinary simulated nodes (default 2 × 4 CPU, 16Gi, 110 pods). */
export function hostShape(name = 'host', nodeCount = 2): ClusterShape {
  return {
    name,
    role: 'host',
    nodes: Array.from({ length: nodeCount }, (_, i) => ({
      name: `${name}-node-${i}`,
      ...DEFAULT_NODE_RESOURCES,
      labels: { 'topology.kubernetes.io/region': regionOf(name) },
    })),
  };
}

/** A remote cluster: simulated nodes spread over zones of one region (default 3 × 4 CPU, 16Gi, 110 pods). */
export function remoteShape(name = 'remote', nodeCount = 3): ClusterShape {
  const region = regionOf(name);
  return {
    name,
    role: 'remote',
    nodes: Array.from({ length: nodeCount }, (_, i) => ({
      name: `${name}-node-${i}`,
      ...DEFAULT_NODE_RESOURCES,
      labels: {
        'topology.kubernetes.io/region': region,
        'topology.kubernetes.io/zone': `${region}-${String.fromCharCode(97 + (i % 26))}`,
      },
    })),
  };
}

export interface ShapeOptions {
  readonly verifyKubeletCertificates?: boolean;
  /** A remote whose only node is a real kubelet (instead of the simulated ones). */
  readonly realNode?: boolean;
  /** kwok answers `kubectl exec` and `kubectl logs` for every pod (see kwok/answer-every-pod.yaml). */
  readonly answerEveryPod?: boolean;
}

export function shapeFor(name: string, role: ClusterRole, options: ShapeOptions = {}): ClusterShape {
  if (options.realNode && role !== 'remote')
    throw new Error(`only a remote cluster can have a real node (${name})`);
  const base = role === 'host' ? hostShape(name) : remoteShape(name, options.realNode ? 0 : undefined);
  return { ...base, ...options };
}
