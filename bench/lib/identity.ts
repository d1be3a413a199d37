// Spillway's own identity in the benchmark clusters, so the API servers themselves can count its
// calls. apiserver_request_total has no user-agent (or user) label since Kubernetes 1.14, so Spillway
// runs as a ServiceAccount of its own (cluster-admin; RBAC is not what is measured) and a set of API
// Priority and Fairness FlowSchemas matches that ServiceAccount's requests by verb and resource:
// apiserver_flowcontrol_dispatched_requests_total{flow_schema} is then the API server's own count of
// Spillway's calls in each category. They all use the built-in `exempt` priority level, as the admin
// identity the floor uses does, so neither side is throttled by APF.

import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { parse, stringify } from 'yaml';
import { apply, type BenchCluster, createOrKeep, namespaceOf } from './api.ts';

export const BENCH_NAMESPACE = 'spillway-bench-system';
const SERVICE_ACCOUNT = 'spillway-bench';
const FLOW_SCHEMAS = '/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas';

interface Rule {
  readonly verbs: string[];
  readonly resources?: string[];
  readonly apiGroups?: string[];
  readonly nonResource?: boolean;
}

/** Categories of calls, first match wins (in this order). */
export const CALL_CATEGORIES: Record<string, Rule> = {
  leases: { verbs: ['*'], resources: ['leases'], apiGroups: ['coordination.k8s.io'] },
  nodes: { verbs: ['*'], resources: ['nodes', 'nodes/status'] },
  events: { verbs: ['*'], resources: ['events'], apiGroups: ['', 'events.k8s.io'] },
  podCreates: { verbs: ['create'], resources: ['pods'] },
  statusWrites: { verbs: ['patch', 'update'], resources: ['pods/status'] },
  podDeletes: { verbs: ['delete', 'deletecollection'], resources: ['pods'] },
  podWrites: { verbs: ['patch', 'update'], resources: ['pods'] },
  gets: { verbs: ['get'], resources: ['*'], apiGroups: ['*'] },
  lists: { verbs: ['list'], resources: ['*'], apiGroups: ['*'] },
  watches: { verbs: ['watch'], resources: ['*'], apiGroups: ['*'] },
  otherWrites: {
    verbs: ['create', 'update', 'patch', 'delete', 'deletecollection'],
    resources: ['*'],
    apiGroups: ['*'],
  },
  other: { verbs: ['*'], resources: ['*'], apiGroups: ['*'], nonResource: true },
};

export type CallCategory = keyof typeof CALL_CATEGORIES;

export const flowSchemaName = (category: string) => `spillway-bench-${category.toLowerCase()}`;

function flowSchema(category: string, rule: Rule, precedence: number) {
  const subject = {
    kind: 'ServiceAccount',
    serviceAccount: { name: SERVICE_ACCOUNT, namespace: BENCH_NAMESPACE },
  };
  return {
    apiVersion: 'flowcontrol.apiserver.k8s.io/v1',
    kind: 'FlowSchema',
    metadata: { name: flowSchemaName(category), labels: { 'spillway.dev/bench': 'true' } },
    spec: {
      priorityLevelConfiguration: { name: 'exempt' },
      matchingPrecedence: precedence,
      rules: [
        {
          subjects: [subject],
          resourceRules: [
            {
              verbs: rule.verbs,
              apiGroups: rule.apiGroups ?? [''],
              resources: rule.resources ?? ['*'],
              clusterScope: true,
              namespaces: ['*'],
            },
          ],
          ...(rule.nonResource ? { nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }] } : {}),
        },
      ],
    },
  };
}

/**
 * Creates the identity and the FlowSchemas in a cluster and writes a kubeconfig for Spillway that
 * authenticates as it (a token from the TokenRequest API, valid for a day).
 */
export async function benchIdentity(cluster: BenchCluster, kubeconfigOut: string): Promise<void> {
  const { client } = cluster;
  await createOrKeep(client, '/api/v1/namespaces', namespaceOf(BENCH_NAMESPACE));
  await createOrKeep(client, `/api/v1/namespaces/${BENCH_NAMESPACE}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: SERVICE_ACCOUNT },
  });
  await apply(client, '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: SERVICE_ACCOUNT },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
    subjects: [{ kind: 'ServiceAccount', name: SERVICE_ACCOUNT, namespace: BENCH_NAMESPACE }],
  } as { metadata: { name: string } });
  let precedence = 500;
  for (const [category, rule] of Object.entries(CALL_CATEGORIES)) {
    await apply(client, FLOW_SCHEMAS, flowSchema(category, rule, precedence++));
  }
  const token = await client.create<{ status: { token: string } }>(
    `/api/v1/namespaces/${BENCH_NAMESPACE}/serviceaccounts/${SERVICE_ACCOUNT}/token`,
    { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 86_400 } },
  );
  const admin = parse(readFileSync(cluster.kubeconfig, 'utf8')) as {
    clusters: { name: string; cluster: Record<string, unknown> }[];
  };
  const server = admin.clusters[0]?.cluster as Record<string, unknown>;
  await writeFile(
    kubeconfigOut,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: cluster.name, cluster: server }],
      users: [{ name: SERVICE_ACCOUNT, user: { token: token.status.token } }],
      contexts: [{ name: cluster.name, context: { cluster: cluster.name, user: SERVICE_ACCOUNT } }],
      'current-context': cluster.name,
    }),
    { mode: 0o600 },
  );
}

/** Removes the FlowSchemas (the identity stays: it costs nothing and the next run reuses it). */
export async function removeFlowSchemas(cluster: BenchCluster): Promise<void> {
  await cluster.client
    .request('DELETE', FLOW_SCHEMAS, { query: { labelSelector: 'spillway.dev/bench=true' } })
    .catch(() => {});
}

export type Calls = Record<string, number>;

/** Spillway's calls so far in each category, as the API server counted them. */
export async function readCalls(cluster: BenchCluster): Promise<Calls> {
  const text = await cluster.client.get<string>('/metrics', { attempts: 10 });
  const calls: Calls = Object.fromEntries(Object.keys(CALL_CATEGORIES).map((c) => [c, 0]));
  const byName = new Map(Object.keys(CALL_CATEGORIES).map((c) => [flowSchemaName(c), c]));
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_flowcontrol_dispatched_requests_total{')) continue;
    const schema = /flow_schema="([^"]+)"/.exec(line)?.[1];
    const category = schema ? byName.get(schema) : undefined;
    if (category) calls[category] = (calls[category] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return calls;
}

export async function readAllCalls(host: BenchCluster, remote: BenchCluster) {
  const [h, r] = await Promise.all([readCalls(host), readCalls(remote)]);
  return { host: h, remote: r };
}

export type ClusterCalls = Awaited<ReturnType<typeof readAllCalls>>;

export function callsBetween(before: ClusterCalls, after: ClusterCalls): ClusterCalls {
  const delta = (a: Calls, b: Calls) =>
    Object.fromEntries(Object.keys(b).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
  return { host: delta(before.host, after.host), remote: delta(before.remote, after.remote) };
}
