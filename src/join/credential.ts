// The credential Spillway uses in a remote: a ServiceAccount token from the TokenRequest API, with a
// bounded lifetime and bound to a Secret of its own, so that deleting that Secret revokes exactly this
// token (rotation revokes the one before last; `leave` revokes all). Its kubeconfig embeds the
// remote's server and CA as the admin kubeconfig has them (or another server, as Spillway reaches it).
import { readFileSync } from 'node:fs';
import type { V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import type { ClusterClient } from '../kube/client.ts';
import { isNotFound } from '../kube/errors.ts';
import { LABEL_FOR_HOST } from './identity.ts';

export const LABEL_CREDENTIAL = 'spillway.dev/credential';

export interface MintedCredential {
  readonly secretName: string;
  readonly token: string;
  readonly expires: Date;
}

export async function mintCredential(options: {
  readonly remote: ClusterClient;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly hostClusterName: string;
  readonly expirationSeconds: number;
}): Promise<MintedCredential> {
  const { remote, namespace, serviceAccount, hostClusterName, expirationSeconds } = options;
  const anchor = await remote.create<V1Secret>(`/api/v1/namespaces/${namespace}/secrets`, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      generateName: `${serviceAccount}-credential-`,
      labels: {
        'app.kubernetes.io/name': 'spillway',
        [LABEL_CREDENTIAL]: 'true',
        [LABEL_FOR_HOST]: hostClusterName,
      },
      annotations: {
        'spillway.dev/purpose': 'deleting this Secret revokes the token Spillway uses (spillway join)',
      },
    },
    type: 'Opaque',
  });
  const secretName = anchor.metadata?.name ?? '';
  const review = await remote.create<{ status?: { token?: string; expirationTimestamp?: string } }>(
    `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: {
        expirationSeconds,
        boundObjectRef: { apiVersion: 'v1', kind: 'Secret', name: secretName, uid: anchor.metadata?.uid },
      },
    },
  );
  const token = review.status?.token;
  if (!token) throw new Error('the remote API server returned no token');
  return {
    secretName,
    token,
    expires: new Date(review.status?.expirationTimestamp ?? Date.now() + expirationSeconds * 1000),
  };
}

/** The credential Secrets of this host cluster's ServiceAccount, oldest first. */
export async function listCredentials(
  remote: ClusterClient,
  namespace: string,
  hostClusterName: string,
): Promise<V1Secret[]> {
  const list = await remote.get<{ items?: V1Secret[] }>(`/api/v1/namespaces/${namespace}/secrets`, {
    query: { labelSelector: `${LABEL_CREDENTIAL}=true,${LABEL_FOR_HOST}=${hostClusterName}` },
  });
  return (list.items ?? []).sort((a, b) =>
    String(a.metadata?.creationTimestamp).localeCompare(String(b.metadata?.creationTimestamp)),
  );
}

/** Revokes a credential: its tokens stop working as soon as the API server sees the Secret gone. */
export async function revokeCredential(remote: ClusterClient, secret: V1Secret): Promise<void> {
  try {
    await remote.delete(`/api/v1/namespaces/${secret.metadata?.namespace}/secrets/${secret.metadata?.name}`, {
      preconditions: { uid: secret.metadata?.uid },
    });
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
}

/** A kubeconfig for Spillway: the remote's server and CA, the token, nothing read from files. */
/** What credentialKubeconfig reads of an admin kubeconfig (Spillway's KubeConfig, or client-node's). */
interface AdminKubeConfig {
  getCurrentCluster(): {
    server: string;
    caData?: string;
    caFile?: string;
    skipTLSVerify?: boolean;
    tlsServerName?: string;
  } | null;
}

export function credentialKubeconfig(
  admin: AdminKubeConfig,
  token: string,
  name: string,
  server?: string,
): string {
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('the remote kubeconfig has no current cluster');
  const caData =
    cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString('base64') : undefined);
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name,
        cluster: {
          server: server ?? cluster.server,
          ...(caData ? { 'certificate-authority-data': caData } : {}),
          ...(cluster.skipTLSVerify ? { 'insecure-skip-tls-verify': true } : {}),
          ...(cluster.tlsServerName ? { 'tls-server-name': cluster.tlsServerName } : {}),
        },
      },
    ],
    users: [{ name: 'spillway', user: { token } }],
    contexts: [{ name, context: { cluster: name, user: 'spillway' } }],
    'current-context': name,
  });
}
