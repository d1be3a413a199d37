// The certificates and keys one local cluster needs, written once into its directory and reused on restart.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertificateAuthority, generateKeyPair, type IssuedCertificate } from '../../src/tls/pki.ts';

export interface ClusterPki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly apiserverCert: string;
  readonly apiserverKey: string;
  readonly adminCert: string;
  readonly adminKey: string;
  readonly kubeletClientCert: string;
  readonly kubeletClientKey: string;
  readonly kwokServingCert: string;
  readonly kwokServingKey: string;
  readonly frontProxyCaCert: string;
  readonly frontProxyClientCert: string;
  readonly frontProxyClientKey: string;
  readonly serviceAccountKey: string;
  readonly serviceAccountPub: string;
}

/** The first address of the service range, which clients inside the cluster know as `kubernetes`. */
export const SERVICE_CLUSTER_IP_RANGE = '10.96.0.0/16';
const KUBERNETES_SERVICE_IP = '10.96.0.1';

function paths(dir: string): ClusterPki {
  const file = (name: string) => join(dir, name);
  return {
    dir,
    caCert: file('ca.crt'),
    caKey: file('ca.key'),
    apiserverCert: file('apiserver.crt'),
    apiserverKey: file('apiserver.key'),
    adminCert: file('admin.crt'),
    adminKey: file('admin.key'),
    kubeletClientCert: file('apiserver-kubelet-client.crt'),
    kubeletClientKey: file('apiserver-kubelet-client.key'),
    kwokServingCert: file('kwok-serving.crt'),
    kwokServingKey: file('kwok-serving.key'),
    frontProxyCaCert: file('front-proxy-ca.crt'),
    frontProxyClientCert: file('front-proxy-client.crt'),
    frontProxyClientKey: file('front-proxy-client.key'),
    serviceAccountKey: file('sa.key'),
    serviceAccountPub: file('sa.pub'),
  };
}

async function writeIssued(certPath: string, keyPath: string, issued: IssuedCertificate): Promise<void> {
  await writeFile(certPath, issued.certificatePem);
  await writeFile(keyPath, issued.privateKeyPem, { mode: 0o600 });
}

/** Creates the cluster's PKI unless it exists already (a restarted cluster keeps its identity). */
export async function ensureClusterPki(dir: string, clusterName: string): Promise<ClusterPki> {
  const pki = paths(dir);
  if (existsSync(pki.serviceAccountPub)) return pki;
  await mkdir(dir, { recursive: true });

  const ca = await CertificateAuthority.create(`${clusterName}-ca`);
  await writeIssued(pki.caCert, pki.caKey, ca.issued);
  await writeIssued(
    pki.apiserverCert,
    pki.apiserverKey,
    await ca.issue({
      commonName: 'kube-apiserver',
      usages: ['server'],
      subjectAltNames: [
        '127.0.0.1',
        'localhost',
        KUBERNETES_SERVICE_IP,
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        'kubernetes.default.svc.cluster.local',
      ],
    }),
  );
  await writeIssued(
    pki.adminCert,
    pki.adminKey,
    await ca.issue({ commonName: 'kubernetes-admin', organizations: ['system:masters'] }),
  );
  await writeIssued(
    pki.kubeletClientCert,
    pki.kubeletClientKey,
    // Authorised like kubeadm does it: a ClusterRoleBinding to system:kubelet-api-admin (see bootstrap).
    await ca.issue({ commonName: 'kube-apiserver-kubelet-client' }),
  );
  await writeIssued(
    pki.kwokServingCert,
    pki.kwokServingKey,
    await ca.issue({
      commonName: 'kwok-kubelet',
      usages: ['server'],
      subjectAltNames: ['127.0.0.1', 'localhost'],
    }),
  );

  const frontProxyCa = await CertificateAuthority.create(`${clusterName}-front-proxy-ca`);
  await writeFile(pki.frontProxyCaCert, frontProxyCa.certificatePem);
  await writeIssued(
    pki.frontProxyClientCert,
    pki.frontProxyClientKey,
    await frontProxyCa.issue({ commonName: 'front-proxy-client' }),
  );

  const serviceAccount = await generateKeyPair();
  await writeFile(pki.serviceAccountKey, serviceAccount.privateKeyPem, { mode: 0o600 });
  await writeFile(pki.serviceAccountPub, serviceAccount.publicKeyPem);
  return pki;
}

/** A kubeconfig with every credential embedded, so it works from any directory and any machine user. */
export async function adminKubeconfig(pki: ClusterPki, clusterName: string, server: string): Promise<string> {
  const b64 = async (file: string) => (await readFile(file)).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${clusterName}`,
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${await b64(pki.caCert)}`,
    'users:',
    `- name: ${clusterName}-admin`,
    '  user:',
    `    client-certificate-data: ${await b64(pki.adminCert)}`,
    `    client-key-data: ${await b64(pki.adminKey)}`,
    'contexts:',
    `- name: ${clusterName}`,
    '  context:',
    `    cluster: ${clusterName}`,
    `    user: ${clusterName}-admin`,
    `current-context: ${clusterName}`,
    '',
  ].join('\n');
}
