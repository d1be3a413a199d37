// Spillway's own install manifests applied to a test cluster, and a kubeconfig for the identity they
// create: what runs with only the permissions the manifests grant.
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { kubectl } from '../cluster/kubectl.ts';

const root = join(import.meta.dirname, '..', '..');

/** The manifests of `manifests/<dir>` as kubectl kustomize renders them, minus the Deployment (no image runs here). */
export async function applyManifests(kubectlBinary: string, kubeconfig: string, dir: string): Promise<void> {
  const rendered = await kubectl(kubectlBinary, kubeconfig, ['kustomize', join(root, 'manifests', dir)]);
  const documents = parseAllDocuments(rendered.stdout)
    .map((doc) => doc.toJSON())
    .filter((object) => object && object.kind !== 'Deployment');
  await kubectl(kubectlBinary, kubeconfig, ['apply', '-f', '-'], {
    input: documents.map((d) => stringify(d)).join('---\n'),
  });
}

/** A kubeconfig with the cluster's CA and a fresh token of the spillway ServiceAccount. */
export async function serviceAccountKubeconfig(
  kubectlBinary: string,
  kubeconfig: string,
  duration = '2h',
): Promise<string> {
  const token = (
    await kubectl(kubectlBinary, kubeconfig, [
      'create',
      'token',
      'spillway',
      '-n',
      'spillway-system',
      `--duration=${duration}`,
    ])
  ).stdout.trim();
  const admin = parse(await readFile(kubeconfig, 'utf8'));
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: admin.clusters,
    users: [{ name: 'spillway', user: { token } }],
    contexts: [{ name: 'spillway', context: { cluster: admin.clusters[0].name, user: 'spillway' } }],
    'current-context': 'spillway',
  };
  const file = join(await mkdtemp(join(tmpdir(), 'spillway-sa-')), 'kubeconfig');
  await writeFile(file, stringify(config), { mode: 0o600 });
  return file;
}
