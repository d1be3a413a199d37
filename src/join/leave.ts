// `spillway leave NAME`: removes the remote's Secret from the host, so Spillway drains the remote
// (delegates deleted, host pods failed so their controllers replace them, node deleted), waits for
// that, then, given the remote's admin kubeconfig, removes what `join` created there: the
// credentials (revoking every token), the binding, the ServiceAccount, and the ClusterRole and
// namespace once no other host cluster uses them.

import { setTimeout as sleep } from 'node:timers/promises';
import type { V1ClusterRoleBinding, V1Node, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import { ClusterClient } from '../kube/client.ts';
import type { KubeConfig } from '../kube/credentials.ts';
import { isNotFound } from '../kube/errors.ts';
import type { Logger } from '../log.ts';
import { LABEL_VIRTUAL_NODE, ownedSelector } from '../ownership.ts';
import { ANNOTATION_NODE_NAME } from '../remotes/discovery.ts';
import { listCredentials, revokeCredential } from './credential.ts';
import {
  defaultRemoteNamespace,
  describeObject,
  JOINED_BY_VALUE,
  LABEL_JOINED_BY,
  objectPath,
  remoteIdentity,
} from './identity.ts';
import { ANNOTATION_REMOTE_NAMESPACE, type ReportLine, readRemoteSecret, secretPath } from './join.ts';

export interface LeaveOptions {
  readonly name: string;
  readonly host: ClusterClient;
  readonly namespace: string;
  readonly hostClusterName: string;
  /** The remote's admin kubeconfig: without it the remote side is left as it is (and said so). */
  readonly remoteKubeConfig?: KubeConfig;
  /** Default: as recorded by join in the Secret, else that of manifests/remote. */
  readonly remoteNamespace?: string;
  readonly timeoutMs: number;
  readonly staticNames: ReadonlySet<string>;
  readonly logger: Logger;
  /** Progress while waiting. */
  readonly progress?: (message: string) => void;
}

async function waitUntil(
  what: string,
  timeoutMs: number,
  check: () => Promise<string | true>,
  progress?: (m: string) => void,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const state = await check();
    if (state === true) return;
    if (state !== last) progress?.(state);
    last = state;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what} (${state})`);
    await sleep(1000);
  }
}

export async function leaveRemote(options: LeaveOptions): Promise<ReportLine[]> {
  const { name, host, namespace, hostClusterName, progress } = options;
  if (options.staticNames.has(name)) {
    throw new Error(`remote "${name}" is defined in the configuration file: remove it there instead`);
  }
  const lines: ReportLine[] = [];
  const secret = await readRemoteSecret(host, namespace, name);
  const remoteNamespace =
    options.remoteNamespace ??
    secret?.metadata?.annotations?.[ANNOTATION_REMOTE_NAMESPACE] ??
    defaultRemoteNamespace();
  const nodeName = secret?.metadata?.annotations?.[ANNOTATION_NODE_NAME] ?? `spillway-${name}`;
  if (!secret && !options.remoteKubeConfig)
    throw new Error(`remote "${name}" has not joined (no Secret ${namespace}/${name})`);
  if (secret) {
    await host.delete(secretPath(namespace, name), { preconditions: { uid: secret.metadata?.uid } });
    lines.push({
      cluster: 'host',
      what: `secret/${name} (namespace ${namespace})`,
      outcome: 'deleted: Spillway drains the remote',
    });
    await waitUntil(
      `Spillway to drain node ${nodeName} (is Spillway running?)`,
      options.timeoutMs,
      async () => {
        const node = await host.get<V1Node>(`/api/v1/nodes/${nodeName}`).catch((error: unknown) => {
          if (isNotFound(error)) return undefined;
          throw error;
        });
        if (!node) return true;
        const pods = await host.get<{ items?: V1Pod[] }>('/api/v1/pods', {
          query: { fieldSelector: `spec.nodeName=${nodeName}` },
        });
        return `node ${nodeName} still there, ${pods.items?.length ?? 0} pods on it`;
      },
      progress,
    );
    lines.push({ cluster: 'host', what: `node/${nodeName}`, outcome: 'drained and deleted by Spillway' });
  }
  if (!options.remoteKubeConfig) {
    const identity = remoteIdentity(hostClusterName, remoteNamespace);
    lines.push({
      cluster: 'remote',
      what: `serviceaccount/${identity.serviceAccount} (namespace ${remoteNamespace})`,
      outcome: 'left in place (no --kubeconfig for the remote): its tokens stay valid until they expire',
    });
    return lines;
  }
  const remote = new ClusterClient({
    name,
    kubeConfig: options.remoteKubeConfig,
    logger: options.logger,
    userAgent: 'spillway leave',
  });
  try {
    await waitUntil(
      'the delegates to be deleted from the remote',
      options.timeoutMs,
      async () => {
        const pods = await remote.get<{ items?: V1Pod[] }>('/api/v1/pods', {
          query: { labelSelector: `${ownedSelector(hostClusterName)},${LABEL_VIRTUAL_NODE}=${nodeName}` },
        });
        const left = pods.items?.length ?? 0;
        return left === 0 ? true : `${left} delegates left in the remote`;
      },
      progress,
    );
    lines.push(...(await removeIdentity(remote, hostClusterName, remoteNamespace)));
    return lines;
  } finally {
    remote.close();
  }
}

/** Deletes what join created for this host cluster; shared objects only when nobody else uses them. */
async function removeIdentity(
  remote: ClusterClient,
  hostClusterName: string,
  remoteNamespace: string,
): Promise<ReportLine[]> {
  const lines: ReportLine[] = [];
  const identity = remoteIdentity(hostClusterName, remoteNamespace);
  const remove = async (kind: string, objectName: string, objectNamespace?: string, outcome = 'deleted') => {
    try {
      await remote.delete(objectPath(kind, objectName, objectNamespace));
      lines.push({
        cluster: 'remote',
        what: describeObject({ kind, metadata: { name: objectName, namespace: objectNamespace } }),
        outcome,
      });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  };
  for (const credential of await listCredentials(remote, remoteNamespace, hostClusterName)) {
    await revokeCredential(remote, credential);
    lines.push({
      cluster: 'remote',
      what: `secret/${credential.metadata?.name} (namespace ${remoteNamespace})`,
      outcome: 'deleted: its token is revoked',
    });
  }
  await remove('ClusterRoleBinding', identity.binding);
  await remove(
    'ServiceAccount',
    identity.serviceAccount,
    remoteNamespace,
    'deleted: every token of it is revoked',
  );
  const bindings = await remote.get<{ items?: V1ClusterRoleBinding[] }>(
    '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
  );
  if (
    !bindings.items?.some((b) => b.roleRef?.kind === 'ClusterRole' && b.roleRef.name === identity.clusterRole)
  ) {
    await remove('ClusterRole', identity.clusterRole, undefined, 'deleted: no other binding uses it');
  }
  const namespace = await remote
    .get<{ metadata?: { labels?: Record<string, string> } }>(objectPath('Namespace', remoteNamespace))
    .catch(() => undefined);
  const accounts = await remote
    .get<{ items?: V1ServiceAccount[] }>(`/api/v1/namespaces/${remoteNamespace}/serviceaccounts`)
    .catch(() => ({ items: [] }));
  const others = (accounts.items ?? []).filter((account) => account.metadata?.name !== 'default');
  if (namespace?.metadata?.labels?.[LABEL_JOINED_BY] === JOINED_BY_VALUE && others.length === 0) {
    await remove(
      'Namespace',
      remoteNamespace,
      undefined,
      'deleted: join created it and nothing else of Spillway is in it',
    );
  }
  return lines;
}
