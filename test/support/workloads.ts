// Workloads for the real-cluster tests, pinned to a virtual node the way a user pins them: a
// nodeSelector on spillway.dev/cluster plus the toleration of the virtual node's taint.
import { AppsV1Api, BatchV1Api, type V1Container, type V1Pod, type V1PodSpec } from '@kubernetes/client-node';
import type { Kube } from './kube.ts';
import { waitFor } from './wait.ts';

export const VIRTUAL_NODE_TOLERATION = { key: 'virtual-kubelet.io/provider', operator: 'Exists' } as const;

export function pinnedSpec(
  remoteName: string,
  overrides: Partial<V1PodSpec> = {},
  container: Partial<V1Container> = {},
): V1PodSpec {
  return {
    nodeSelector: { 'spillway.dev/cluster': remoteName },
    tolerations: [VIRTUAL_NODE_TOLERATION],
    containers: [{ name: 'main', image: 'nginx:1.27', ...container }],
    ...overrides,
  };
}

export async function createDeployment(
  kube: Kube,
  namespace: string,
  name: string,
  replicas: number,
  spec: V1PodSpec,
): Promise<void> {
  await kube.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec },
      },
    },
  });
}

export async function scaleDeployment(
  kube: Kube,
  namespace: string,
  name: string,
  replicas: number,
): Promise<void> {
  const apps = kube.kubeConfig.makeApiClient(AppsV1Api);
  const scale = await apps.readNamespacedDeploymentScale({ name, namespace });
  await apps.replaceNamespacedDeploymentScale({ name, namespace, body: { ...scale, spec: { replicas } } });
}

export async function createJob(kube: Kube, namespace: string, name: string, spec: V1PodSpec): Promise<void> {
  await kube.kubeConfig.makeApiClient(BatchV1Api).createNamespacedJob({
    namespace,
    body: {
      metadata: { name },
      spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', ...spec } } },
    },
  });
}

export async function readJob(kube: Kube, namespace: string, name: string) {
  return kube.kubeConfig.makeApiClient(BatchV1Api).readNamespacedJob({ name, namespace });
}

export async function podsWithLabel(kube: Kube, namespace: string, selector: string): Promise<V1Pod[]> {
  return (await kube.core.listNamespacedPod({ namespace, labelSelector: selector })).items;
}

/** Waits until `count` pods with the label are Running and Ready, and returns them. */
export async function waitForRunning(
  kube: Kube,
  namespace: string,
  selector: string,
  count: number,
  timeoutMs = 60_000,
) {
  return waitFor(
    `${count} pods ${selector} Running and Ready`,
    async () => {
      const pods = await podsWithLabel(kube, namespace, selector);
      const ready = pods.filter(
        (p) =>
          p.status?.phase === 'Running' &&
          !p.metadata?.deletionTimestamp &&
          p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      return ready.length === count ? ready : undefined;
    },
    { timeoutMs },
  );
}

/**
 * After a test file deleted its host namespace: waits (best effort) until Spillway has collected the
 * delegates in that remote namespace, so stopping Spillway leaves nothing behind.
 */
export async function delegatesCollected(remote: Kube, namespace: string): Promise<void> {
  await waitFor('delegates collected', async () =>
    (await remote.core.listNamespacedPod({ namespace })).items.length === 0 ? true : undefined,
  ).catch(() => {});
}

/** Waits until the node exists and reports Ready=True. */
export async function waitForNodeReady(kube: Kube, name: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `node ${name} Ready`,
    async () => {
      const node = await kube.core.readNode({ name }).catch(() => undefined);
      return node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        ? true
        : undefined;
    },
    { timeoutMs },
  );
}
