// `spillway join NAME --kubeconfig REMOTE_ADMIN_KUBECONFIG`: gives Spillway an identity in the remote
// (namespace, ServiceAccount, least-privilege RBAC from manifests/remote), mints a bounded-lifetime
// credential for it, checks that it works, and stores it in the host as the labelled Secret that
// Spillway discovers at run time (no restart). With --rotate, only a new credential is minted and
// swapped in (running pods are untouched); the one before last is revoked.
import type { V1Secret } from '@kubernetes/client-node';
import { ClusterClient } from '../kube/client.ts';
import type { KubeConfig } from '../kube/credentials.ts';
import { isNotFound, messageOf } from '../kube/errors.ts';
import { kubeConfigFromString } from '../kube/kubeconfig.ts';
import type { Logger } from '../log.ts';
import { ANNOTATION_NODE_NAME, LABEL_REMOTE_CLUSTER, SECRET_KUBECONFIG_KEY } from '../remotes/discovery.ts';
import { credentialKubeconfig, listCredentials, mintCredential, revokeCredential } from './credential.ts';
import { formatDuration } from './duration.ts';
import { applyObject, defaultRemoteNamespace, describeObject, remoteIdentity } from './identity.ts';

export const ANNOTATION_REMOTE_NAMESPACE = 'spillway.dev/remote-namespace';
export const ANNOTATION_REMOTE_SERVICE_ACCOUNT = 'spillway.dev/remote-service-account';
export const ANNOTATION_CREDENTIAL = 'spillway.dev/credential';
export const ANNOTATION_CREDENTIAL_EXPIRES = 'spillway.dev/credential-expires';

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export interface JoinOptions {
  readonly name: string;
  readonly remoteKubeConfig: KubeConfig;
  readonly host: ClusterClient;
  /** Spillway's namespace in the host, where the Secret goes. */
  readonly namespace: string;
  readonly hostClusterName: string;
  /** Default: as recorded in the Secret by the join being rotated, else that of manifests/remote. */
  readonly remoteNamespace?: string;
  readonly nodeName?: string;
  readonly expirationSeconds: number;
  readonly rotate: boolean;
  /** With rotate: revoke the current credential at once too (it leaked), not only the one before. */
  readonly revokePrevious: boolean;
  /** How Spillway reaches the remote, when not as the admin kubeconfig does. */
  readonly server?: string;
  /** Remotes of the configuration file: a Secret may not take their names. */
  readonly staticNames: ReadonlySet<string>;
  readonly logger: Logger;
}

export interface ReportLine {
  readonly cluster: 'remote' | 'host';
  readonly what: string;
  readonly outcome: string;
}

export interface JoinReport {
  readonly lines: ReportLine[];
  readonly secret: string;
  readonly nodeName: string;
  readonly expires: Date;
}

export function secretPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${namespace}/secrets/${name}`;
}

export async function readRemoteSecret(
  host: ClusterClient,
  namespace: string,
  name: string,
): Promise<V1Secret | undefined> {
  try {
    return await host.get<V1Secret>(secretPath(namespace, name));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw new Error(`reading Secret ${namespace}/${name} in the host cluster`, { cause: error });
  }
}

export async function joinRemote(options: JoinOptions): Promise<JoinReport> {
  const { name, host, namespace, hostClusterName, rotate } = options;
  if (!dnsLabel.test(name))
    throw new Error(`remote name "${name}" must be a DNS label (lowercase letters, digits, "-")`);
  if (options.staticNames.has(name))
    throw new Error(`remote "${name}" is defined in the configuration file; choose another name`);
  // Before anything is created in the remote: is Spillway installed where the Secret must go?
  await host.get(`/api/v1/namespaces/${namespace}`).catch((error: unknown) => {
    if (!isNotFound(error))
      throw new Error(`reading namespace ${namespace} of the host cluster`, { cause: error });
    throw new Error(
      `namespace ${namespace} does not exist in the host cluster: install Spillway first (kubectl apply -k manifests/base) or give its namespace (--namespace)`,
    );
  });
  const existing = await readRemoteSecret(host, namespace, name);
  if (existing && existing.metadata?.labels?.[LABEL_REMOTE_CLUSTER] === undefined) {
    throw new Error(
      `Secret ${namespace}/${name} exists in the host and is not a remote-cluster Secret; not touching it`,
    );
  }
  if (existing && !rotate) {
    throw new Error(
      `remote "${name}" has already joined (Secret ${namespace}/${name}); use --rotate to replace its credential`,
    );
  }
  if (!existing && rotate)
    throw new Error(`remote "${name}" has not joined (no Secret ${namespace}/${name}): nothing to rotate`);

  const remote = new ClusterClient({
    name,
    kubeConfig: options.remoteKubeConfig,
    logger: options.logger,
    userAgent: 'spillway join',
  });
  const lines: ReportLine[] = [];
  try {
    const remoteNamespace =
      options.remoteNamespace ??
      existing?.metadata?.annotations?.[ANNOTATION_REMOTE_NAMESPACE] ??
      defaultRemoteNamespace();
    const identity = remoteIdentity(hostClusterName, remoteNamespace);
    for (const object of identity.objects) {
      const outcome = await applyObject(remote, object).catch((error: unknown) => {
        throw new Error(`${describeObject(object)} in the remote cluster: ${messageOf(error)}`, {
          cause: error,
        });
      });
      lines.push({ cluster: 'remote', what: describeObject(object), outcome });
    }
    const minted = await mintCredential({
      remote,
      namespace: identity.namespace,
      serviceAccount: identity.serviceAccount,
      hostClusterName,
      expirationSeconds: options.expirationSeconds,
    });
    const lifetime = Math.round((minted.expires.getTime() - Date.now()) / 1000);
    lines.push({
      cluster: 'remote',
      what: `token for serviceaccount/${identity.serviceAccount}`,
      outcome: `minted, expires ${minted.expires.toISOString()} (${formatDuration(lifetime)}); revoked by deleting secret/${minted.secretName}`,
    });
    const kubeconfig = credentialKubeconfig(options.remoteKubeConfig, minted.token, name, options.server);
    // Checked the way this machine reaches the remote (Spillway may reach it by another --server).
    await verifyCredential(
      credentialKubeconfig(options.remoteKubeConfig, minted.token, name),
      name,
      options.logger,
    );
    lines.push({ cluster: 'remote', what: 'new credential', outcome: 'verified: it can list nodes' });

    const nodeName =
      options.nodeName ?? existing?.metadata?.annotations?.[ANNOTATION_NODE_NAME] ?? `spillway-${name}`;
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name,
        namespace,
        ...(existing
          ? { resourceVersion: existing.metadata?.resourceVersion, uid: existing.metadata?.uid }
          : {}),
        labels: {
          ...existing?.metadata?.labels,
          'app.kubernetes.io/name': 'spillway',
          [LABEL_REMOTE_CLUSTER]: name,
        },
        annotations: {
          ...existing?.metadata?.annotations,
          [ANNOTATION_NODE_NAME]: nodeName,
          [ANNOTATION_REMOTE_NAMESPACE]: identity.namespace,
          [ANNOTATION_REMOTE_SERVICE_ACCOUNT]: identity.serviceAccount,
          [ANNOTATION_CREDENTIAL]: minted.secretName,
          [ANNOTATION_CREDENTIAL_EXPIRES]: minted.expires.toISOString(),
        },
      },
      data: { [SECRET_KUBECONFIG_KEY]: Buffer.from(kubeconfig).toString('base64') },
    };
    if (existing) await host.replace(secretPath(namespace, name), body);
    else await host.create(`/api/v1/namespaces/${namespace}/secrets`, body);
    lines.push({
      cluster: 'host',
      what: `secret/${name} (namespace ${namespace})`,
      outcome: existing
        ? 'updated: Spillway swaps the credential in without restarting anything'
        : `created, labelled ${LABEL_REMOTE_CLUSTER}=${name}: Spillway adds node ${nodeName} without a restart`,
    });

    // Keep the new credential and the one just replaced (Spillway may still be using it for a
    // moment); revoke every older one — and the replaced one too when asked.
    const current = existing?.metadata?.annotations?.[ANNOTATION_CREDENTIAL];
    for (const secret of await listCredentials(remote, identity.namespace, hostClusterName)) {
      const secretName = secret.metadata?.name;
      if (secretName === minted.secretName) continue;
      if (secretName === current && !options.revokePrevious) continue;
      await revokeCredential(remote, secret);
      lines.push({
        cluster: 'remote',
        what: `secret/${secretName} (namespace ${identity.namespace})`,
        outcome: 'deleted: the credential it anchored is revoked',
      });
    }
    return { lines, secret: `${namespace}/${name}`, nodeName, expires: minted.expires };
  } finally {
    remote.close();
  }
}

async function verifyCredential(kubeconfig: string, name: string, logger: Logger): Promise<void> {
  const client = new ClusterClient({
    name,
    kubeConfig: kubeConfigFromString(kubeconfig, 'new credential'),
    logger,
  });
  // A new token may take a moment to be accepted by every API server of an HA control plane.
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        await client.get('/api/v1/nodes', { query: { limit: 1 }, attempts: 1 });
        return;
      } catch (error) {
        if (attempt >= 5)
          throw new Error(`the new credential does not work: ${messageOf(error)}`, { cause: error });
        await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
      }
    }
  } finally {
    client.close();
  }
}

export function formatReport(lines: readonly ReportLine[]): string {
  const width = Math.max(...lines.map((line) => line.what.length));
  return lines
    .map((line) => `  ${line.cluster.padEnd(6)} ${line.what.padEnd(width)}  ${line.outcome}`)
    .join('\n');
}
