// The namespace offloading policy on real clusters: a namespace's spillway.dev/remote-clusters pattern
// becomes required node affinity on its new pods (through the webhook) and refuses pods that land on
// another remote anyway; its remote namespace is named by prefix, the same name or explicitly, and two
// host namespaces asking for one remote namespace are refused with an event.
import { AppsV1Api, type CoreV1Event } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import { condition, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import {
  pinnedSpec,
  podsWithLabel,
  VIRTUAL_NODE_TOLERATION,
  waitForNodeReady,
} from '../support/workloads.ts';

const suffix = uniqueSuffix();
const eu = `eu-${suffix}`;
const us = `us-${suffix}`;
const node = (remote: string) => `spillway-${remote}`;
const restricted = `restricted-${suffix}`;
const explicit = `explicit-${suffix}`;
const rival = `rival-${suffix}`;
const same = `same-${suffix}`;
const plain = `plain-${suffix}`;
const target = `target-${suffix}`;
const spillwayNamespace = `spillway-ns-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
let spillway: Spillway;

const remoteNamespaces = () => [target, same, `px-${plain}`, `px-${restricted}`];

async function createNamespace(name: string, annotations: Record<string, string> = {}) {
  await host.core.createNamespace({ body: { metadata: { name, annotations } } });
}

async function createPod(namespace: string, name: string, remoteName: string) {
  await host.core.createNamespacedPod({
    namespace,
    body: { metadata: { name, labels: { app: name } }, spec: pinnedSpec(remoteName) },
  });
}

const delegateIn = (namespace: string, name: string) =>
  waitFor(`delegate ${namespace}/${name}`, () =>
    remote.core.readNamespacedPod({ name, namespace }).catch(() => undefined),
  );

async function eventsOf(kind: string, name: string): Promise<CoreV1Event[]> {
  const list = await host.core.listEventForAllNamespaces({
    fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
  });
  return list.items;
}

beforeAll(async () => {
  await createNamespace(restricted, { 'spillway.dev/remote-clusters': 'eu-*' });
  await createNamespace(explicit, { 'spillway.dev/remote-namespace': target });
  await createNamespace(same, { 'spillway.dev/remote-namespace-naming': 'same' });
  await createNamespace(plain);
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    namespace: spillwayNamespace,
    remotes: [eu, us].map((name) => ({ name, kubeconfig: clusters.remote.kubeconfig, nodeName: node(name) })),
    extra: {
      webhook: { enabled: true, port: await freePort() },
      pods: { namespacePrefix: 'px-' },
      namespaces: { mappingAnnotations: true },
    },
  });
  for (const name of [eu, us]) await waitForNodeReady(host, node(name));
  // The rival asks for the same remote namespace, after the explicit namespace is older.
  await createNamespace(rival, { 'spillway.dev/remote-namespace': target });
});

afterAll(async () => {
  for (const name of [restricted, explicit, rival, same, plain]) {
    await host.core.deleteNamespace({ name }).catch(() => {});
  }
  for (const name of remoteNamespaces()) {
    await waitFor('delegates collected', async () =>
      (await remote.core.listNamespacedPod({ namespace: name })).items.length === 0 ? true : undefined,
    ).catch(() => {});
  }
  await spillway?.stop();
  for (const name of [eu, us]) await host.core.deleteNode({ name: node(name) }).catch(() => {});
  await clusters
    .kubectl('host', ['delete', 'mutatingwebhookconfiguration', `spillway-burst.${spillwayNamespace}`])
    .catch(() => {});
  for (const name of remoteNamespaces()) await remote.core.deleteNamespace({ name }).catch(() => {});
});

describe('which remotes a namespace may use', () => {
  it('turns the pattern into required node affinity, so its pods land only on matching remotes', async () => {
    await waitFor('the policy webhook installed', async () => {
      const config = await clusters.kubectl('host', [
        'get',
        'mutatingwebhookconfiguration',
        `spillway-burst.${spillwayNamespace}`,
        '-o',
        'jsonpath={.webhooks[*].name}',
      ]);
      return config.stdout.includes('remotes.policy.spillway.dev') ? true : undefined;
    });
    // Meant for any virtual node: the policy narrows it to the eu remote.
    await host.kubeConfig.makeApiClient(AppsV1Api).createNamespacedDeployment({
      namespace: restricted,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 3,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: {
              nodeSelector: { type: 'virtual-kubelet' },
              tolerations: [VIRTUAL_NODE_TOLERATION],
              containers: [{ name: 'main', image: 'nginx' }],
            },
          },
        },
      },
    });
    const pods = await waitFor('three pods scheduled', async () => {
      const list = await podsWithLabel(host, restricted, 'app=web');
      return list.length === 3 && list.every((p) => p.spec?.nodeName) ? list : undefined;
    });
    expect(pods.map((p) => p.spec?.nodeName)).toEqual([node(eu), node(eu), node(eu)]);
    expect(pods[0]?.metadata?.annotations?.['spillway.dev/remote-clusters-applied']).toBe('eu-*');
    expect(
      pods[0]?.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
        ?.nodeSelectorTerms,
    ).toContainEqual({
      matchExpressions: [{ key: 'spillway.dev/cluster', operator: 'In', values: [eu] }],
    });
  });

  it('refuses a pod that lands on another remote anyway', async () => {
    // Bound straight to the us node: neither the webhook's affinity nor the scheduler stood in its way.
    await host.core.createNamespacedPod({
      namespace: restricted,
      body: {
        metadata: { name: 'stray' },
        spec: {
          nodeName: node(us),
          tolerations: [VIRTUAL_NODE_TOLERATION],
          containers: [{ name: 'c', image: 'x' }],
        },
      },
    });
    const pod = await waitFor('the refusal', async () => {
      const current = await host.core.readNamespacedPod({ name: 'stray', namespace: restricted });
      return current.status?.phase === 'Failed' ? current : undefined;
    });
    expect(pod.status?.reason).toBe('RemoteClusterNotAllowed');
    expect(pod.status?.message).toContain('eu-*');
    expect(
      await remote.core
        .readNamespacedPod({ name: 'stray', namespace: `px-${restricted}` })
        .catch(() => undefined),
    ).toBeUndefined();
  });
});

describe('how its remote namespace is named', () => {
  it('prefix by default, the same name, or an explicit name', async () => {
    await createPod(plain, 'a', eu);
    await createPod(same, 'b', eu);
    await createPod(explicit, 'c', eu);
    expect((await delegateIn(`px-${plain}`, 'a')).metadata?.namespace).toBe(`px-${plain}`);
    expect((await delegateIn(same, 'b')).metadata?.namespace).toBe(same);
    expect((await delegateIn(target, 'c')).metadata?.annotations?.['spillway.dev/host-namespace']).toBe(
      explicit,
    );
  });

  it('refuses a second host namespace mapping to the same remote namespace, with an event', async () => {
    await createPod(rival, 'd', eu);
    const pod = await waitFor('the conflict on the pod', async () => {
      const current = await host.core.readNamespacedPod({ name: 'd', namespace: rival });
      return condition(current, 'spillway.dev/Delegated')?.reason === 'RemoteNamespaceConflict'
        ? current
        : undefined;
    });
    expect(condition(pod, 'spillway.dev/Delegated')?.message).toContain(`namespace ${explicit} uses`);
    const events = await waitFor('the event on the namespace', async () => {
      const list = await eventsOf('Namespace', rival);
      return list.some((e) => e.reason === 'RemoteNamespaceConflict') ? list : undefined;
    });
    expect(events.find((e) => e.reason === 'RemoteNamespaceConflict')?.type).toBe('Warning');
    expect(
      await remote.core.readNamespacedPod({ name: 'd', namespace: target }).catch(() => undefined),
    ).toBeUndefined();
  });
});
