// The reads behind `spillway status`, from the host API server only: Spillway's virtual nodes, the pods
// on them, the remote-cluster Secrets and Leases in its namespace, and its Warning events. A read the
// caller may not do (a Secret list, say) leaves that part out instead of failing the whole report.
import type { CoreV1Event, V1Lease, V1Node, V1Pod, V1Secret } from '@kubernetes/client-node';
import { LABEL_HA_LEASE, leasesPath } from '../ha/leases.ts';
import type { ClusterClient } from '../kube/client.ts';
import { isForbidden } from '../kube/errors.ts';
import { isOwnedBy } from '../node/forge.ts';
import { LABEL_MANAGED_BY, MANAGED_BY_VALUE } from '../ownership.ts';
import { LABEL_REMOTE_CLUSTER } from '../remotes/discovery.ts';
import { buildStatus, type StatusReport } from './model.ts';

export interface CollectOptions {
  readonly host: ClusterClient;
  readonly namespace: string;
  readonly hostClusterName: string;
  readonly configured: readonly { readonly name: string; readonly nodeName: string }[];
}

async function items<T>(
  host: ClusterClient,
  path: string,
  query: Record<string, string | number> = {},
): Promise<T[]> {
  try {
    return (await host.get<{ items?: T[] }>(path, { query, attempts: 3 })).items ?? [];
  } catch (error) {
    if (isForbidden(error)) return [];
    throw error;
  }
}

export async function collectStatus(options: CollectOptions): Promise<StatusReport> {
  const { host, namespace, hostClusterName } = options;
  const [nodes, secrets, leases, events] = await Promise.all([
    items<V1Node>(host, '/api/v1/nodes', { labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE}` }),
    items<V1Secret>(host, `/api/v1/namespaces/${namespace}/secrets`, { labelSelector: LABEL_REMOTE_CLUSTER }),
    items<V1Lease>(host, leasesPath(namespace), { labelSelector: LABEL_HA_LEASE }),
    items<CoreV1Event>(host, '/api/v1/events', { fieldSelector: 'type=Warning', limit: 1000 }),
  ]);
  const ours = nodes.filter((node) => isOwnedBy(node, hostClusterName));
  const nodeNames = new Set([
    ...ours.map((n) => n.metadata?.name ?? ''),
    ...options.configured.map((c) => c.nodeName),
  ]);
  const podsByNode = new Map<string, V1Pod[]>();
  await Promise.all(
    [...nodeNames].map(async (node) => {
      podsByNode.set(
        node,
        await items<V1Pod>(host, '/api/v1/pods', { fieldSelector: `spec.nodeName=${node}` }),
      );
    }),
  );
  return buildStatus({
    hostClusterName,
    namespace,
    configured: options.configured,
    nodes: ours,
    secrets,
    leases,
    podsByNode,
    events: events.filter((e) => (e.reportingComponent || e.source?.component) === 'spillway'),
    now: Date.now(),
  });
}
