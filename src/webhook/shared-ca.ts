// With several replicas behind one webhook Service, the API server may call any of them: they all
// serve certificates from one CA, kept in a Secret in Spillway's namespace. The first replica creates
// it; the others (and later restarts) read it.
import type { V1Secret } from '@kubernetes/client-node';
import type { ClusterClient } from '../kube/client.ts';
import { isAlreadyExists, isNotFound } from '../kube/errors.ts';
import { CertificateAuthority } from '../tls/pki.ts';

export const WEBHOOK_CA_SECRET = 'spillway-webhook-ca';

export async function sharedWebhookAuthority(
  host: ClusterClient,
  namespace: string,
): Promise<CertificateAuthority> {
  const path = `/api/v1/namespaces/${namespace}/secrets`;
  const read = async (): Promise<CertificateAuthority | undefined> => {
    try {
      const secret = await host.get<V1Secret>(`${path}/${WEBHOOK_CA_SECRET}`);
      const decode = (key: string) => Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8');
      return await CertificateAuthority.load(decode('tls.crt'), decode('tls.key'));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new Error(`reading the webhook CA Secret ${namespace}/${WEBHOOK_CA_SECRET}`, { cause: error });
    }
  };
  const existing = await read();
  if (existing) return existing;
  const authority = await CertificateAuthority.create('spillway-webhook-ca');
  try {
    await host.create(path, {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: WEBHOOK_CA_SECRET, labels: { 'app.kubernetes.io/name': 'spillway' } },
      stringData: { 'tls.crt': authority.certificatePem, 'tls.key': authority.issued.privateKeyPem },
    });
    return authority;
  } catch (error) {
    if (!isAlreadyExists(error)) throw new Error('creating the webhook CA Secret', { cause: error });
    const winner = await read();
    if (!winner) throw new Error('the webhook CA Secret vanished right after it was created');
    return winner;
  }
}
