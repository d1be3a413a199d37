// Removing a remote drains it: deleting its Secret deletes its delegates and reflected copies in the
// remote, fails its host pods with a reason (their controllers replace them) and deletes its node; the
// Secret is held by a finalizer until then. A remote that cannot be reached is waited for; one gone for
// good is removed with `spillway.dev/remove: force`, which asks it nothing.
import { readFile } from 'node:fs/promises';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { type Kube, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import {
  createDeployment,
  pinnedSpec,
  podsWithLabel,
  waitForNodeReady,
  waitForRunning,
} from '../support/workloads.ts';

const suffix = uniqueSuffix();
const spillwayNamespace = `spillway-drain-${suffix}`;
const namespace = `drain-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
let remoteB: Kube;
let spillway: Spillway;

async function addRemote(name: string, kubeconfigPath: string): Promise<string> {
  const nodeName = `spillway-${name}`;
  await host.core.createNamespacedSecret({
    namespace: spillwayNamespace,
    body: {
      metadata: { name, labels: { 'spillway.dev/remote-cluster': name } },
      data: { kubeconfig: (await readFile(kubeconfigPath)).toString('base64') },
    },
  });
  await waitForNodeReady(host, nodeName);
  return nodeName;
}

async function secretGone(name: string) {
  return (await host.core.readNamespacedSecret({ name, namespace: spillwayNamespace }).catch(() => undefined))
    ? undefined
    : true;
}

async function nodeGone(name: string) {
  return (await host.core.readNode({ name }).catch(() => undefined)) ? undefined : true;
}

/** The host pods' RemoteClusterRemoved events (the pods themselves go with their node, by the host's pod GC). */
async function removedEvents(pods: V1Pod[]) {
  const events = await host.core.listNamespacedEvent({
    namespace,
    fieldSelector: 'reason=RemoteClusterRemoved',
  });
  const uids = new Set(pods.map((p) => p.metadata?.uid));
  return events.items.filter((e) => uids.has(e.involvedObject.uid));
}

async function deployOn(remoteName: string, app: string) {
  await createDeployment(
    host,
    namespace,
    app,
    2,
    pinnedSpec(remoteName, {}, { envFrom: [{ configMapRef: { name: 'settings' } }] }),
  );
  return waitForRunning(host, namespace, `app=${app}`, 2);
}

beforeAll(async () => {
  remoteB = kube((await clusters.ensure('remote-b', 'remote')).kubeconfig);
  for (const name of [spillwayNamespace, namespace]) {
    await host.core.createNamespace({ body: { metadata: { name } } });
  }
  await host.core.createNamespacedConfigMap({
    namespace,
    body: { metadata: { name: 'settings' }, data: { mode: 'drain' } },
  });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    namespace: spillwayNamespace,
    discovery: true,
    remotes: [],
  });
});

afterAll(async () => {
  await clusters.start('remote-b').catch(() => {});
  await spillway?.stop();
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await host.core.deleteNamespace({ name: spillwayNamespace }).catch(() => {});
  for (const k of [remote, remoteB]) await k?.core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe('removing a remote', () => {
  it('deletes its delegates and copies, fails its host pods, then deletes its node and releases its Secret', async () => {
    const name = `gone-${suffix}`;
    const nodeName = await addRemote(name, clusters.remote.kubeconfig);
    const pods = await deployOn(name, 'a');
    const selector = `spillway.dev/virtual-node=${nodeName}`;
    expect(
      (await remote.core.listNamespacedConfigMap({ namespace, labelSelector: selector })).items,
    ).toHaveLength(1);
    const secret = await host.core.readNamespacedSecret({ name, namespace: spillwayNamespace });
    expect(secret.metadata?.finalizers).toContain('spillway.dev/drain-remote');

    await host.core.deleteNamespacedSecret({ name, namespace: spillwayNamespace });
    await waitFor('node deleted and Secret released', async () =>
      (await nodeGone(nodeName)) && (await secretGone(name)) ? true : undefined,
    );
    expect((await remote.core.listNamespacedPod({ namespace, labelSelector: selector })).items).toEqual([]);
    expect((await remote.core.listNamespacedConfigMap({ namespace, labelSelector: selector })).items).toEqual(
      [],
    );
    const events = await removedEvents(pods);
    expect(events).toHaveLength(2);
    expect(events[0]?.message).toContain('delegate was deleted');
    expect(spillway.registry.get(name)).toBeUndefined();
  });

  it('waits for a remote that cannot be reached, and finishes the drain when it answers', async () => {
    const name = `late-${suffix}`;
    const nodeName = await addRemote(name, clusters.get('remote-b').kubeconfig);
    const pods = await deployOn(name, 'b');
    await clusters.stop('remote-b');
    await host.core.deleteNamespacedSecret({ name, namespace: spillwayNamespace });
    const cordoned = await waitFor('node cordoned', async () => {
      const node = await host.core.readNode({ name: nodeName });
      return node.spec?.unschedulable ? node : undefined;
    });
    expect(cordoned.metadata?.deletionTimestamp).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    // Nothing is failed while the delegates' fate is unknown; the Secret keeps the credentials.
    const current = await podsWithLabel(host, namespace, 'app=b');
    expect(current.filter((p) => p.status?.phase === 'Failed')).toEqual([]);
    expect(
      (await host.core.readNamespacedSecret({ name, namespace: spillwayNamespace })).metadata
        ?.deletionTimestamp,
    ).toBeDefined();

    await clusters.start('remote-b');
    await waitFor(
      'drain finished',
      async () => ((await nodeGone(nodeName)) && (await secretGone(name)) ? true : undefined),
      {
        timeoutMs: 90_000,
      },
    );
    expect(
      (
        await remoteB.core.listNamespacedPod({
          namespace,
          labelSelector: `spillway.dev/virtual-node=${nodeName}`,
        })
      ).items,
    ).toEqual([]);
    expect(await removedEvents(pods)).toHaveLength(2);
  });

  it('removes a remote gone for good with remove: force, asking it nothing', async () => {
    const name = `dead-${suffix}`;
    const nodeName = await addRemote(name, clusters.get('remote-b').kubeconfig);
    const pods = await deployOn(name, 'c');
    await clusters.stop('remote-b');
    await host.core.patchNamespacedSecret(
      {
        name,
        namespace: spillwayNamespace,
        body: { metadata: { annotations: { 'spillway.dev/remove': 'force' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await host.core.deleteNamespacedSecret({ name, namespace: spillwayNamespace });
    await waitFor('node deleted and Secret released', async () =>
      (await nodeGone(nodeName)) && (await secretGone(name)) ? true : undefined,
    );
    const events = await removedEvents(pods);
    expect(events).toHaveLength(2);
    expect(events[0]?.message).toContain('force-removed');
    // What ran there is left behind: the remote was not asked.
    await clusters.start('remote-b');
    const left = await remoteB.core.listNamespacedPod({
      namespace,
      labelSelector: `spillway.dev/virtual-node=${nodeName}`,
    });
    expect(left.items).toHaveLength(2);
  });

  it('hands a remote over on stop (nothing deleted), and drains one the file marks remove: drain', async () => {
    const name = `file-${suffix}`;
    const nodeName = `spillway-${name}`;
    const remoteSpec = { name, kubeconfig: clusters.remote.kubeconfig, nodeName };
    const first = await startSpillway({ hostKubeconfig: clusters.host.kubeconfig, remotes: [remoteSpec] });
    await waitForNodeReady(host, nodeName);
    const pods = await deployOn(name, 'd');
    const selector = `spillway.dev/virtual-node=${nodeName}`;
    await first.stop();
    // A stop writes nothing: the delegates and the node are still there.
    expect((await remote.core.listNamespacedPod({ namespace, labelSelector: selector })).items).toHaveLength(
      2,
    );
    expect(await nodeGone(nodeName)).toBeUndefined();

    const second = await startSpillway({
      hostKubeconfig: clusters.host.kubeconfig,
      remotes: [{ ...remoteSpec, remove: 'drain' }],
    });
    try {
      await waitFor('node drained and deleted', async () => nodeGone(nodeName));
      expect((await remote.core.listNamespacedPod({ namespace, labelSelector: selector })).items).toEqual([]);
      expect(await removedEvents(pods)).toHaveLength(2);
    } finally {
      await second.stop();
    }
  });
});
