// Spillway runs with nothing but the permissions its manifests grant: ServiceAccount tokens in both
// clusters, bound by manifests/base (host) and manifests/remote (remote), do the whole pod lifecycle.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { kubeconfigCredentials, kubeletGet } from '../support/kubelet-client.ts';
import { applyManifests, serviceAccountKubeconfig } from '../support/manifests.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { createDeployment, pinnedSpec, waitForRunning } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `rbac-${suffix}`;
const nodeName = `spillway-rbac-${suffix}`;
const namespace = `rbac-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
const logs: string[] = [];
let spillway: Spillway;
let kubeletPort: number;

beforeAll(async () => {
  await applyManifests(clusters.kubectlBinary, clusters.host.kubeconfig, 'base');
  await applyManifests(clusters.kubectlBinary, clusters.remote.kubeconfig, 'remote');
  const hostKubeconfig = await serviceAccountKubeconfig(clusters.kubectlBinary, clusters.host.kubeconfig);
  const remoteKubeconfig = await serviceAccountKubeconfig(clusters.kubectlBinary, clusters.remote.kubeconfig);
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  kubeletPort = await freePort();
  spillway = await startSpillway(
    {
      hostKubeconfig,
      kubeletPort,
      namespace: 'spillway-system',
      discovery: true,
      remotes: [{ name: remoteName, kubeconfig: remoteKubeconfig, nodeName }],
    },
    logs,
  );
});

afterAll(async () => {
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await spillway?.stop();
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('least privilege', () => {
  it('does the whole lifecycle with only the permissions of its manifests', async () => {
    await waitFor('node Ready', async () => {
      const node = await host.core.readNode({ name: nodeName }).catch(() => undefined);
      return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        ? true
        : undefined;
    });
    await host.core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'settings' }, data: { a: '1' } },
    });
    await host.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'token' }, stringData: { t: 'x' } },
    });
    await createDeployment(
      host,
      namespace,
      'app',
      2,
      pinnedSpec(
        remoteName,
        {},
        {
          envFrom: [{ configMapRef: { name: 'settings' } }, { secretRef: { name: 'token' } }],
        },
      ),
    );
    await waitForRunning(host, namespace, 'app=app', 2);
    const lease = await host.coordination.readNamespacedLease({
      name: nodeName,
      namespace: 'kube-node-lease',
    });
    expect(lease.spec?.holderIdentity).toBe(nodeName);
    // The kubelet API: the caller is authenticated and authorized against the host (token and access
    // reviews), and usage is read from the remote's metrics.k8s.io (a refusal there would be logged).
    const admin = await kubeconfigCredentials(clusters.host.kubeconfig);
    const summary = await kubeletGet(kubeletPort, '/stats/summary', admin);
    expect(summary.status).toBe(200);
    expect(JSON.parse(summary.body).node.nodeName).toBe(nodeName);

    await host.core.deleteNamespace({ name: namespace });
    await waitFor('delegates and reflected objects collected', async () => {
      const pods = await remote.core.listNamespacedPod({ namespace });
      const secrets = await remote.core.listNamespacedSecret({
        namespace,
        labelSelector: 'spillway.dev/reflected',
      });
      return pods.items.length === 0 && secrets.items.length === 0 ? true : undefined;
    });
    const refused = logs.filter((line) =>
      /forbidden|cannot (get|list|watch|create|patch|delete)/i.test(line),
    );
    expect(refused).toEqual([]);
  });
});
