// Spillway's identity in a remote cluster, built from manifests/remote (the one source of its RBAC
// rules, also applied by hand with kubectl): the namespace, a ServiceAccount per host cluster (several
// host clusters may share a remote, and one leaving must not revoke another), the shared ClusterRole
// and a binding. Applied idempotently: created when missing, updated when it differs and is ours.
import { readFileSync } from 'node:fs';
import type { KubernetesObject, V1ClusterRole } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import type { ClusterClient } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';

const MANIFESTS = new URL('../../manifests/remote/', import.meta.url);

export const LABEL_JOINED_BY = 'app.kubernetes.io/managed-by';
export const JOINED_BY_VALUE = 'spillway-join';
export const LABEL_FOR_HOST = 'spillway.dev/host-cluster';

function manifest(file: string): KubernetesObject[] {
  return parseAllDocuments(readFileSync(new URL(file, MANIFESTS), 'utf8'))
    .map((doc) => doc.toJSON() as KubernetesObject)
    .filter(Boolean);
}

/** The ClusterRole of manifests/remote/rbac.yaml, as it is there. */
export function remoteClusterRole(): V1ClusterRole {
  const role = manifest('rbac.yaml').find((object) => object.kind === 'ClusterRole');
  if (!role) throw new Error('manifests/remote/rbac.yaml has no ClusterRole');
  return role as V1ClusterRole;
}

/** The namespace manifests/remote installs into (its kustomization's namespace). */
export function defaultRemoteNamespace(): string {
  const namespace = manifest('namespace.yaml').find((object) => object.kind === 'Namespace');
  return namespace?.metadata?.name ?? 'spillway-system';
}

export interface RemoteIdentity {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly clusterRole: string;
  readonly binding: string;
  /** In apply order. */
  readonly objects: readonly (KubernetesObject & { metadata: { name: string } })[];
}

export function remoteIdentity(hostClusterName: string, namespace: string): RemoteIdentity {
  const role = remoteClusterRole();
  const labels = {
    'app.kubernetes.io/name': 'spillway',
    [LABEL_JOINED_BY]: JOINED_BY_VALUE,
    [LABEL_FOR_HOST]: hostClusterName,
  };
  const serviceAccount = `spillway-${hostClusterName}`;
  const clusterRole = role.metadata?.name ?? 'spillway-remote';
  const binding = `${clusterRole}-${hostClusterName}`;
  return {
    namespace,
    serviceAccount,
    clusterRole,
    binding,
    objects: [
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: namespace,
          labels: { 'app.kubernetes.io/name': 'spillway', [LABEL_JOINED_BY]: JOINED_BY_VALUE },
        },
      },
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount, namespace, labels } },
      {
        ...role,
        metadata: {
          name: clusterRole,
          labels: { ...role.metadata?.labels, 'app.kubernetes.io/name': 'spillway' },
        },
      } as KubernetesObject & { metadata: { name: string } },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: binding, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
        subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }],
      } as KubernetesObject & { metadata: { name: string } },
    ],
  };
}

const collections: Record<string, (namespace?: string) => string> = {
  Namespace: () => '/api/v1/namespaces',
  ServiceAccount: (namespace) => `/api/v1/namespaces/${namespace}/serviceaccounts`,
  Secret: (namespace) => `/api/v1/namespaces/${namespace}/secrets`,
  ClusterRole: () => '/apis/rbac.authorization.k8s.io/v1/clusterroles',
  ClusterRoleBinding: () => '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
};

export function objectPath(kind: string, name: string, namespace?: string): string {
  const collection = collections[kind];
  if (!collection) throw new Error(`no path for kind ${kind}`);
  return `${collection(namespace)}/${name}`;
}

export function describeObject(object: KubernetesObject): string {
  const where = object.metadata?.namespace ? ` (namespace ${object.metadata.namespace})` : '';
  return `${object.kind?.toLowerCase()}/${object.metadata?.name}${where}`;
}

export type ApplyOutcome = 'created' | 'updated' | 'unchanged';

/** JSON with object keys sorted: the API server returns fields in its own order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}

/** The parts of an object that join manages (rules, role reference, subjects, labels). */
function managedContent(object: Record<string, unknown>): string {
  const { rules, roleRef, subjects } = object as Record<string, unknown>;
  const labels = (object.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {};
  return canonical({ rules, roleRef, subjects, labels });
}

/** Creates the object or brings what join manages of it up to date; refuses to change what is not Spillway's. */
export async function applyObject(client: ClusterClient, object: KubernetesObject): Promise<ApplyOutcome> {
  const name = object.metadata?.name ?? '';
  const path = objectPath(object.kind ?? '', name, object.metadata?.namespace);
  let existing: Record<string, unknown> & KubernetesObject;
  try {
    existing = await client.get(path);
  } catch (error) {
    if (!isNotFound(error)) throw new Error(`reading ${describeObject(object)}`, { cause: error });
    await client.create(path.slice(0, path.lastIndexOf('/')), object);
    return 'created';
  }
  if (object.kind === 'Namespace' || object.kind === 'ServiceAccount') return 'unchanged';
  const desired = {
    ...existing,
    ...object,
    metadata: { ...existing.metadata, labels: { ...existing.metadata?.labels, ...object.metadata?.labels } },
  };
  if (managedContent(existing) === managedContent(desired)) return 'unchanged';
  if (existing.metadata?.labels?.['app.kubernetes.io/name'] !== 'spillway') {
    throw new Error(
      `${describeObject(object)} exists and is not Spillway's (no app.kubernetes.io/name=spillway label); not changing it`,
    );
  }
  await client.replace(path, desired);
  return 'updated';
}
