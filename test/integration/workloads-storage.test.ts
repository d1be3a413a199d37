// Storage on virtual nodes on real clusters (KWOK nodes): claims of Spillway's StorageClasses are
// provisioned in the remote (bound there by its controller-manager to static PersistentVolumes), the
// host claims are bound to volumes Spillway makes, pinned to the virtual node, so a StatefulSet's pod
// comes back where its data is; deleting a host claim deletes the remote one (reclaim policy Delete) or
// keeps it (Retain); a remote namesake that is not ours is left alone (an event); generic ephemeral
// volumes go with their pod.
import { AppsV1Api, StorageV1Api, type V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { delegatesCollected, pinnedSpec, waitForNodeReady, waitForRunning } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `storage-${suffix}`;
const nodeName = `spillway-storage-${suffix}`;
const namespace = `storage-${suffix}`;
const deleting = `spillway-del-${suffix}`;
const retaining = `spillway-ret-${suffix}`;
const mapped = `remote-ssd-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
const apps = host.kubeConfig.makeApiClient(AppsV1Api);
const remoteName_ = (claim: string) => `${claim}.host.${nodeName}`;
const staticVolumes: string[] = [];
let spillway: Spillway;

const hostClaim = (name: string) =>
  host.core.readNamespacedPersistentVolumeClaim({ name, namespace }).catch(() => undefined);
const remoteClaim = (name: string) =>
  remote.core
    .readNamespacedPersistentVolumeClaim({ name: remoteName_(name), namespace })
    .catch(() => undefined);
const boundClaim = (read: () => Promise<V1PersistentVolumeClaim | undefined>, what: string) =>
  waitFor(
    what,
    async () => {
      const claim = await read();
      return claim?.status?.phase === 'Bound' ? claim : undefined;
    },
    { timeoutMs: 90_000 },
  );

async function storageClass(name: string, reclaimPolicy: 'Delete' | 'Retain') {
  await host.kubeConfig.makeApiClient(StorageV1Api).createStorageClass({
    body: {
      metadata: { name },
      provisioner: 'spillway.dev/remote',
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy,
    },
  });
}

/** A static volume in the remote that its PV controller binds a claim of the class to. */
async function staticVolume(className: string) {
  const name = `static-${suffix}-${staticVolumes.length}`;
  staticVolumes.push(name);
  await remote.core.createPersistentVolume({
    body: {
      metadata: { name },
      spec: {
        storageClassName: className,
        capacity: { storage: '2Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        hostPath: { path: `/tmp/spillway-test-${name}` },
      },
    },
  });
}

function claimSpec(className: string): V1PersistentVolumeClaim {
  return {
    spec: {
      storageClassName: className,
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
    },
  };
}

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  await storageClass(deleting, 'Delete');
  await storageClass(retaining, 'Retain');
  for (const className of [deleting, deleting, deleting, retaining, mapped]) await staticVolume(className);
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
  });
  await waitForNodeReady(host, nodeName);
});

afterAll(async () => {
  await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  await delegatesCollected(remote, namespace);
  await waitFor('host volumes released', async () => {
    const volumes = await host.core.listPersistentVolume({
      labelSelector: `spillway.dev/virtual-node=${nodeName}`,
    });
    return volumes.items.every((v) => v.spec?.persistentVolumeReclaimPolicy === 'Retain') ? true : undefined;
  }).catch(() => {});
  await spillway?.stop();
  const retained = await host.core.listPersistentVolume({
    labelSelector: `spillway.dev/virtual-node=${nodeName}`,
  });
  for (const volume of retained.items) {
    await clusters
      .kubectl('host', [
        'patch',
        'pv',
        volume.metadata?.name ?? '',
        '--type=merge',
        '-p',
        '{"metadata":{"finalizers":null}}',
      ])
      .catch(() => {});
    await host.core.deletePersistentVolume({ name: volume.metadata?.name ?? '' }).catch(() => {});
  }
  const storage = host.kubeConfig.makeApiClient(StorageV1Api);
  for (const name of [deleting, retaining]) await storage.deleteStorageClass({ name }).catch(() => {});
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
  for (const name of staticVolumes) await remote.core.deletePersistentVolume({ name }).catch(() => {});
});

describe('claims on a virtual node', () => {
  let firstRemoteUid: string | undefined;

  it('provisions a StatefulSet’s claim in the remote and binds the host claim to a volume pinned to the node', async () => {
    await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: 'db' },
        spec: {
          serviceName: 'db',
          replicas: 1,
          selector: { matchLabels: { app: 'db' } },
          template: {
            metadata: { labels: { app: 'db' } },
            spec: pinnedSpec(remoteName, {}, { volumeMounts: [{ name: 'data', mountPath: '/data' }] }),
          },
          volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: claimSpec(deleting).spec }],
        },
      },
    });
    const claim = await boundClaim(() => hostClaim('data-db-0'), 'the host claim bound');
    const volume = await host.core.readPersistentVolume({ name: claim.spec?.volumeName ?? '' });
    expect(volume.spec?.claimRef?.uid).toBe(claim.metadata?.uid);
    expect(volume.spec?.csi?.driver).toBe('spillway.dev');
    expect(volume.spec?.storageClassName).toBe(deleting);
    expect(volume.spec?.persistentVolumeReclaimPolicy).toBe('Delete');
    expect(volume.spec?.nodeAffinity?.required?.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [nodeName] }] },
    ]);
    const copy = await boundClaim(
      () => remoteClaim('data-db-0'),
      'the remote claim bound to a static volume',
    );
    expect(copy.spec?.storageClassName).toBe(deleting);
    expect(copy.spec?.accessModes).toEqual(['ReadWriteOnce']);
    expect(staticVolumes).toContain(copy.spec?.volumeName);
    firstRemoteUid = copy.metadata?.uid;
    await waitForRunning(host, namespace, 'app=db', 1, 90_000);
    const delegate = await remote.core.readNamespacedPod({ name: 'db-0', namespace });
    expect(delegate.spec?.volumes?.find((v) => v.name === 'data')?.persistentVolumeClaim?.claimName).toBe(
      remoteName_('data-db-0'),
    );
  });

  it('puts the StatefulSet’s next pod of that identity back where its data is', async () => {
    const before = await host.core.readNamespacedPod({ name: 'db-0', namespace });
    await host.core.deleteNamespacedPod({ name: 'db-0', namespace });
    const again = await waitFor(
      'db-0 back',
      async () => {
        const pod = await host.core.readNamespacedPod({ name: 'db-0', namespace }).catch(() => undefined);
        return pod && pod.metadata?.uid !== before.metadata?.uid && pod.spec?.nodeName ? pod : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(again.spec?.nodeName).toBe(nodeName);
    await waitForRunning(host, namespace, 'app=db', 1, 90_000);
    expect((await remoteClaim('data-db-0'))?.metadata?.uid).toBe(firstRemoteUid);
  });

  it('deletes the remote claim with the host claim (reclaim policy Delete)', async () => {
    const claim = await hostClaim('data-db-0');
    await apps.deleteNamespacedStatefulSet({ name: 'db', namespace });
    await waitFor('db-0 gone', async () =>
      (await host.core.readNamespacedPod({ name: 'db-0', namespace }).catch(() => undefined))
        ? undefined
        : true,
    );
    await host.core.deleteNamespacedPersistentVolumeClaim({ name: 'data-db-0', namespace });
    await waitFor(
      'the remote claim gone',
      async () => ((await remoteClaim('data-db-0')) ? undefined : true),
      { timeoutMs: 90_000 },
    );
    await waitFor('the host volume gone', async () =>
      (await host.core.readPersistentVolume({ name: claim?.spec?.volumeName ?? '' }).catch(() => undefined))
        ? undefined
        : true,
    );
  });

  it('keeps the remote claim and the volume with reclaim policy Retain', async () => {
    await host.core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: { ...claimSpec(retaining), metadata: { name: 'kept' } },
    });
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'keeper', labels: { app: 'keeper' } },
        spec: pinnedSpec(remoteName, {
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'kept' } }],
        }),
      },
    });
    await waitForRunning(host, namespace, 'app=keeper', 1, 90_000);
    const claim = await boundClaim(() => hostClaim('kept'), 'kept bound');
    await host.core.deleteNamespacedPod({ name: 'keeper', namespace });
    await host.core.deleteNamespacedPersistentVolumeClaim({ name: 'kept', namespace });
    const volume = await waitFor(
      'the volume released',
      async () => {
        const current = await host.core.readPersistentVolume({ name: claim.spec?.volumeName ?? '' });
        return current.status?.phase === 'Released' ? current : undefined;
      },
      { timeoutMs: 90_000 },
    );
    expect(volume.metadata?.finalizers).toContain('spillway.dev/remote-claim');
    expect((await remoteClaim('kept'))?.status?.phase).toBe('Bound');
  });

  it('maps the remote StorageClass by annotation', async () => {
    await host.core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        ...claimSpec(deleting),
        metadata: { name: 'fast', annotations: { 'spillway.dev/remote-storage-class': mapped } },
      },
    });
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'mapper', labels: { app: 'mapper' } },
        spec: pinnedSpec(remoteName, {
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'fast' } }],
        }),
      },
    });
    const copy = await boundClaim(() => remoteClaim('fast'), 'the mapped claim bound');
    expect(copy.spec?.storageClassName).toBe(mapped);
  });

  it('leaves a same-named remote claim that is not Spillway’s alone, and says so on the host claim', async () => {
    await remote.core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => {});
    await remote.core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: { ...claimSpec('someone-elses'), metadata: { name: remoteName_('taken') } },
    });
    await host.core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: { ...claimSpec(deleting), metadata: { name: 'taken' } },
    });
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'taker', labels: { app: 'taker' } },
        spec: pinnedSpec(remoteName, {
          volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'taken' } }],
        }),
      },
    });
    const event = await waitFor('a ProvisioningFailed event', async () => {
      const events = await host.core.listNamespacedEvent({
        namespace,
        fieldSelector: 'involvedObject.kind=PersistentVolumeClaim,involvedObject.name=taken',
      });
      return events.items.find((e) => e.reason === 'ProvisioningFailed');
    });
    expect(event.type).toBe('Warning');
    expect(event.message).toContain('is not this Spillway');
    const untouched = await remoteClaim('taken');
    expect(untouched?.spec?.storageClassName).toBe('someone-elses');
    expect(untouched?.metadata?.labels?.['spillway.dev/host-cluster']).toBeUndefined();
    expect((await hostClaim('taken'))?.status?.phase).toBe('Pending');
    await host.core.deleteNamespacedPod({ name: 'taker', namespace, gracePeriodSeconds: 0 });
    await host.core.deleteNamespacedPersistentVolumeClaim({ name: 'taken', namespace });
  });

  it('provisions a generic ephemeral volume, and deletes it with its pod', async () => {
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'scratch', labels: { app: 'scratch' } },
        spec: pinnedSpec(remoteName, {
          volumes: [
            { name: 'tmp', ephemeral: { volumeClaimTemplate: { spec: claimSpec(deleting).spec ?? {} } } },
          ],
        }),
      },
    });
    await waitForRunning(host, namespace, 'app=scratch', 1, 90_000);
    await boundClaim(() => remoteClaim('scratch-tmp'), 'the ephemeral claim bound in the remote');
    const delegate = await remote.core.readNamespacedPod({ name: 'scratch', namespace });
    expect(delegate.spec?.volumes?.[0]).toMatchObject({
      name: 'tmp',
      persistentVolumeClaim: { claimName: remoteName_('scratch-tmp') },
    });
    await host.core.deleteNamespacedPod({ name: 'scratch', namespace });
    await waitFor(
      'the ephemeral claim gone with its pod',
      async () => ((await remoteClaim('scratch-tmp')) ? undefined : true),
      { timeoutMs: 90_000 },
    );
  });
});
