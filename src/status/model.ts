// `spillway status` as data: one entry per remote cluster, built from what the host API server holds
// (virtual nodes, their pods, remote-cluster Secrets, high-availability Leases, Spillway's events), so it
// works from any machine with a kubeconfig and sees every replica at once. Pure: the API reads are in
// collect.ts.
import type { CoreV1Event, V1Lease, V1Node, V1Pod, V1Secret } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { ANNOTATION_KUBELET_ENDPOINT, ANNOTATION_LEASE_NODE, ANNOTATION_LEASE_REMOTE } from '../ha/leases.ts';
import { addInto, formatResourceList, parseQuantity, type ResourceList } from '../kube/quantity.ts';
import { tokenExpiry } from '../kube/token.ts';
import { podRequests } from '../node/capacity.ts';
import { LABEL_CLUSTER } from '../ownership.ts';
import { ANNOTATION_NODE_NAME, LABEL_REMOTE_CLUSTER, SECRET_KUBECONFIG_KEY } from '../remotes/discovery.ts';

export const PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown'] as const;
const SHOWN_RESOURCES = ['cpu', 'memory', 'pods'];

export interface ReplicaStatus {
  readonly identity: string;
  readonly kubeletEndpoint: string | null;
  readonly live: boolean;
  readonly leader: boolean;
  readonly remotes: number;
}

export interface RemoteStatus {
  readonly name: string;
  readonly node: string;
  readonly ready: boolean;
  /** Ready condition's reason (or NodeMissing). */
  readonly reason: string;
  readonly message: string;
  readonly source: string;
  readonly kubeletEndpoint: string | null;
  readonly capacity: Record<string, string>;
  readonly allocatable: Record<string, string>;
  /** Requests of the host pods on the node that are not finished, and their number. */
  readonly requested: Record<string, string>;
  readonly pods: Record<(typeof PHASES)[number], number>;
  readonly lastError: {
    readonly reason: string;
    readonly message: string;
    readonly time: string | null;
  } | null;
  /** With high availability: the replica holding the remote's Lease. */
  readonly owner: {
    readonly replica: string;
    readonly kubeletEndpoint: string | null;
    readonly live: boolean;
  } | null;
  readonly credentialExpires: string | null;
}

export interface StatusReport {
  readonly hostClusterName: string;
  readonly namespace: string;
  readonly highAvailability: boolean;
  readonly replicas: readonly ReplicaStatus[];
  readonly remotes: readonly RemoteStatus[];
}

export interface StatusInputs {
  readonly hostClusterName: string;
  readonly namespace: string;
  /** Remotes of the configuration file, when one was given. */
  readonly configured: readonly { readonly name: string; readonly nodeName: string }[];
  readonly nodes: readonly V1Node[];
  readonly secrets: readonly V1Secret[];
  readonly leases: readonly V1Lease[];
  readonly podsByNode: ReadonlyMap<string, readonly V1Pod[]>;
  readonly events: readonly CoreV1Event[];
  readonly now: number;
}

function leaseLive(lease: V1Lease | undefined, now: number): boolean {
  const spec = lease?.spec;
  if (!spec?.holderIdentity) return false;
  const renewed = Date.parse(String(spec.renewTime ?? ''));
  return Number.isFinite(renewed) && now - renewed < (spec.leaseDurationSeconds ?? 10) * 1000;
}

function pick(list: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(
    SHOWN_RESOURCES.filter((r) => list?.[r] !== undefined).map((r) => [r, list?.[r] as string]),
  );
}

function time(value: unknown): string | null {
  if (!value) return null;
  const date = new Date(value as string);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

function secretExpiry(secret: V1Secret | undefined): string | null {
  const annotated = secret?.metadata?.annotations?.['spillway.dev/credential-expires'];
  if (annotated) return annotated;
  const encoded = secret?.data?.[SECRET_KUBECONFIG_KEY];
  if (!encoded) return null;
  try {
    const kubeconfig = parse(Buffer.from(encoded, 'base64').toString('utf8')) as {
      users?: { user?: { token?: string } }[];
    };
    return tokenExpiry(kubeconfig.users?.[0]?.user?.token)?.toISOString() ?? null;
  } catch {
    return null;
  }
}

export function buildStatus(inputs: StatusInputs): StatusReport {
  const { now } = inputs;
  const remoteLeases = new Map<string, V1Lease>();
  const replicaLeases: V1Lease[] = [];
  let leaderLease: V1Lease | undefined;
  for (const lease of inputs.leases) {
    const role = lease.metadata?.labels?.['spillway.dev/ha-lease'];
    if (role === 'remote')
      remoteLeases.set(lease.metadata?.annotations?.[ANNOTATION_LEASE_REMOTE] ?? '', lease);
    else if (role === 'replica') replicaLeases.push(lease);
    else if (role === 'leader') leaderLease = lease;
  }
  const endpointOf = (identity: string) =>
    replicaLeases.find((l) => l.spec?.holderIdentity === identity)?.metadata?.annotations?.[
      ANNOTATION_KUBELET_ENDPOINT
    ] ?? null;

  // Every remote any source knows of, with the node name and where it comes from.
  const remotes = new Map<string, { node: string; source: string; secret?: V1Secret }>();
  for (const c of inputs.configured) remotes.set(c.name, { node: c.nodeName, source: 'configuration' });
  for (const secret of inputs.secrets) {
    const name = secret.metadata?.labels?.[LABEL_REMOTE_CLUSTER] || secret.metadata?.name || '';
    if (remotes.has(name)) continue;
    const node = secret.metadata?.annotations?.[ANNOTATION_NODE_NAME] || `spillway-${name}`;
    remotes.set(name, {
      node,
      source: `Secret ${secret.metadata?.namespace}/${secret.metadata?.name}`,
      secret,
    });
  }
  for (const node of inputs.nodes) {
    const name = node.metadata?.labels?.[LABEL_CLUSTER] ?? '';
    if (name && !remotes.has(name))
      remotes.set(name, {
        node: node.metadata?.name ?? '',
        source: 'node only (no configuration or Secret names it)',
      });
  }
  for (const [name, lease] of remoteLeases) {
    if (name && !remotes.has(name))
      remotes.set(name, {
        node: lease.metadata?.annotations?.[ANNOTATION_LEASE_NODE] ?? `spillway-${name}`,
        source: 'Lease only',
      });
  }

  const entries: RemoteStatus[] = [...remotes]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, known]) => {
      const node = inputs.nodes.find((n) => n.metadata?.name === known.node);
      const ready = node?.status?.conditions?.find((c) => c.type === 'Ready');
      const pods = inputs.podsByNode.get(known.node) ?? [];
      const phases = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<(typeof PHASES)[number], number>;
      const requested: ResourceList = new Map();
      let active = 0;
      for (const pod of pods) {
        const phase = (pod.status?.phase ?? 'Pending') as (typeof PHASES)[number];
        phases[phase] = (phases[phase] ?? 0) + 1;
        if (phase === 'Succeeded' || phase === 'Failed') continue;
        active++;
        addInto(requested, podRequests(pod.spec as never));
      }
      requested.set('pods', parseQuantity(active));
      const podKeys = new Set(pods.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`));
      const warnings = inputs.events
        .filter((e) => {
          const o = e.involvedObject;
          return (
            (o.kind === 'Node' && o.name === known.node) ||
            (o.kind === 'Pod' && podKeys.has(`${o.namespace}/${o.name}`)) ||
            (o.kind === 'Secret' &&
              known.secret &&
              o.name === known.secret.metadata?.name &&
              o.namespace === known.secret.metadata?.namespace)
          );
        })
        .map((e) => ({
          reason: e.reason ?? '',
          message: e.message ?? '',
          time: time(e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp),
        }));
      if (ready && ready.status !== 'True') {
        warnings.push({
          reason: ready.reason ?? 'NotReady',
          message: ready.message ?? '',
          time: time(ready.lastTransitionTime),
        });
      }
      warnings.sort((a, b) => String(b.time).localeCompare(String(a.time)));
      const lease = remoteLeases.get(name);
      const holder = lease?.spec?.holderIdentity;
      const address = node?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
      const port = node?.status?.daemonEndpoints?.kubeletEndpoint?.Port;
      return {
        name,
        node: known.node,
        ready: ready?.status === 'True',
        reason: node ? (ready?.reason ?? 'Unknown') : 'NodeMissing',
        message: node ? (ready?.message ?? '') : `no node ${known.node} in the host cluster`,
        source: known.source,
        kubeletEndpoint: address && port ? `${address}:${port}` : null,
        capacity: pick(node?.status?.capacity),
        allocatable: pick(node?.status?.allocatable),
        requested: pick(formatResourceList(requested)),
        pods: phases,
        lastError: warnings[0] ?? null,
        owner: holder
          ? { replica: holder, kubeletEndpoint: endpointOf(holder), live: leaseLive(lease, now) }
          : null,
        credentialExpires: secretExpiry(known.secret),
      };
    });
  const leader = leaseLive(leaderLease, now) ? leaderLease?.spec?.holderIdentity : undefined;
  const replicas: ReplicaStatus[] = replicaLeases
    .filter((l) => l.spec?.holderIdentity)
    .map((l) => {
      const identity = l.spec?.holderIdentity as string;
      return {
        identity,
        kubeletEndpoint: l.metadata?.annotations?.[ANNOTATION_KUBELET_ENDPOINT] ?? null,
        live: leaseLive(l, now),
        leader: identity === leader,
        remotes: entries.filter((e) => e.owner?.replica === identity && e.owner.live).length,
      };
    })
    .sort((a, b) => Number(b.live) - Number(a.live) || a.identity.localeCompare(b.identity));
  return {
    hostClusterName: inputs.hostClusterName,
    namespace: inputs.namespace,
    highAvailability: inputs.leases.length > 0,
    replicas,
    remotes: entries,
  };
}
