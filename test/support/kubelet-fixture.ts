// What every kubelet-API test file sets up the same way: a namespace in the host and the remote with
// KWOK's answers for it, a virtual node of its own (its remote's name and node name from one prefix),
// pods pinned there, and the cleanup, in the order that leaves nothing behind.
import type { V1Container } from '@kubernetes/client-node';
import { clusters } from '../cluster/fixture.ts';
import { type Kube, kube, uniqueSuffix } from './kube.ts';
import { type KwokFixture, kwokForNamespace, removeKwokForNamespace } from './kwok.ts';
import { delegatesCollected, pinnedSpec, waitForRunning } from './workloads.ts';

export interface KubeletTestNames {
  readonly suffix: string;
  readonly namespace: string;
  readonly remoteName: string;
  readonly nodeName: string;
  readonly host: Kube;
  readonly remote: Kube;
  /** The remote for Spillway's configuration. */
  readonly remoteConfig: { name: string; kubeconfig: string; nodeName: string };
}

/** Unique names for one test file (known when the file loads, so that test tables can use them). */
export function kubeletTestNames(prefix: string): KubeletTestNames {
  const suffix = uniqueSuffix();
  const remoteName = `${prefix}-${suffix}`;
  const nodeName = `spillway-${prefix}-${suffix}`;
  return {
    suffix,
    namespace: `${prefix}-${suffix}`,
    remoteName,
    nodeName,
    host: kube(clusters.host.kubeconfig),
    remote: kube(clusters.remote.kubeconfig),
    remoteConfig: { name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName },
  };
}

/** The namespace in both clusters, and what KWOK answers for its pods. */
export async function createKubeletTestNamespace(
  test: KubeletTestNames,
  kwokOptions: Parameters<typeof kwokForNamespace>[2],
): Promise<KwokFixture> {
  await test.host.core.createNamespace({ body: { metadata: { name: test.namespace } } });
  await test.remote.core.createNamespace({ body: { metadata: { name: test.namespace } } });
  return kwokForNamespace(test.remote, test.namespace, kwokOptions);
}

/** Creates busybox pods pinned to the test's virtual node, labelled `app=<label>`, and waits until they run. */
export async function runPods(
  test: KubeletTestNames,
  names: readonly string[],
  label: string,
  container: Partial<V1Container> = {},
): Promise<void> {
  for (const name of names) {
    await test.host.core.createNamespacedPod({
      namespace: test.namespace,
      body: {
        metadata: { name, labels: { app: label } },
        spec: pinnedSpec(test.remoteName, {}, { image: 'busybox', ...container }),
      },
    });
  }
  await waitForRunning(test.host, test.namespace, `app=${label}`, names.length, 120_000);
}

/** Removes the namespaces (after Spillway collected the delegates), KWOK's objects and the node. */
export async function removeKubeletTestNamespace(
  test: KubeletTestNames,
  stopSpillway: () => Promise<void> | undefined,
): Promise<void> {
  const { host, remote, namespace } = test;
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await delegatesCollected(remote, namespace);
  await stopSpillway();
  await removeKwokForNamespace(remote, namespace);
  await host.core.deleteNode({ name: test.nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
}
