// A kubeconfig for the same cluster that authenticates with a bearer token only (no client
// certificate), so that kubectl really acts as that token's user.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export async function tokenKubeconfig(kubeconfig: string, token: string): Promise<string> {
  const source = new KubeConfig();
  source.loadFromFile(kubeconfig);
  const cluster = source.getCurrentCluster();
  if (!cluster) throw new Error(`${kubeconfig} names no cluster`);
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'token', token }],
    contexts: [{ name: 'token', cluster: cluster.name, user: 'token' }],
    currentContext: 'token',
  });
  const file = join(await mkdtemp(join(tmpdir(), 'spillway-token-')), 'kubeconfig');
  await writeFile(file, config.exportConfig());
  return file;
}
