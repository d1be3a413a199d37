// The storage planner, pure: which host claims are Spillway's to provision on this virtual node, the
// remote claim (class mapped by annotation, then by configuration, else the same name; size, access
// modes and volume mode kept), the host volume pinned to the node, and the reclaim policy once the host
// claim goes.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { forgeRemoteClaim, planStorage, type StorageContext } from '../../src/storage/plan.ts';

const context: StorageContext = {
  scope: { hostClusterName: 'host', nodeName: 'spillway-west' },
  remoteName: 'west',
  provisioner: 'spillway.dev/remote',
  classes: { standard: 'gp3' },
  remoteNamespace: (namespace) => `h-${namespace}`,
};

const storageClass = (reclaimPolicy = 'Delete', provisioner = 'spillway.dev/remote'): V1StorageClass => ({
  metadata: { name: 'standard' },
  provisioner,
  reclaimPolicy,
  volumeBindingMode: 'WaitForFirstConsumer',
  mountOptions: ['noatime'],
});

const claim = (
  annotations: Record<string, string> = { 'volume.kubernetes.io/selected-node': 'spillway-west' },
  storageClassName = 'standard',
): V1PersistentVolumeClaim => ({
  metadata: { name: 'data-db-0', namespace: 'shop', uid: 'claim-uid', annotations },
  spec: {
    storageClassName,
    accessModes: ['ReadWriteOnce', 'ReadOnlyMany'],
    volumeMode: 'Block',
    resources: { requests: { storage: '5Gi' } },
  },
});

const remoteClaim: V1PersistentVolumeClaim = {
  metadata: { name: 'data-db-0.host.spillway-west', namespace: 'h-shop', uid: 'remote-uid' },
  status: { phase: 'Bound', capacity: { storage: '8Gi' } },
};

const volume = (phase: string, reclaim = 'Delete', extra: Partial<V1PersistentVolume['metadata']> = {}) =>
  ({
    metadata: { name: 'pvc-claim-uid', uid: 'pv-uid', resourceVersion: '7', ...extra },
    spec: { persistentVolumeReclaimPolicy: reclaim, claimRef: { uid: 'claim-uid' } },
    status: { phase },
  }) as V1PersistentVolume;

describe('which claims are provisioned here', () => {
  it('only those of Spillway’s provisioner that the scheduler placed on this node, not yet bound', () => {
    expect(planStorage({ claim: claim(), storageClass: storageClass('Delete', 'ebs.csi') }, context)).toEqual(
      [],
    );
    const elsewhere = claim({ 'volume.kubernetes.io/selected-node': 'spillway-east' });
    expect(planStorage({ claim: elsewhere, storageClass: storageClass() }, context)).toEqual([]);
    expect(planStorage({ claim: claim({}), storageClass: storageClass() }, context)).toEqual([]);
    const bound = { ...claim(), spec: { ...claim().spec, volumeName: 'pvc-claim-uid' } };
    expect(planStorage({ claim: bound, storageClass: storageClass() }, context)).toEqual([]);
  });
});

describe('the remote claim', () => {
  it('keeps size, access modes and volume mode, in the pod’s remote namespace, owned', () => {
    const [action] = planStorage({ claim: claim(), storageClass: storageClass() }, context);
    expect(action?.kind).toBe('createRemoteClaim');
    const made = action?.kind === 'createRemoteClaim' ? action.claim : undefined;
    expect(made?.metadata?.name).toBe('data-db-0.host.spillway-west');
    expect(made?.metadata?.namespace).toBe('h-shop');
    expect(made?.metadata?.labels).toMatchObject({
      'spillway.dev/host-cluster': 'host',
      'spillway.dev/virtual-node': 'spillway-west',
      'spillway.dev/host-claim-uid': 'claim-uid',
    });
    expect(made?.spec).toEqual({
      accessModes: ['ReadWriteOnce', 'ReadOnlyMany'],
      resources: { requests: { storage: '5Gi' } },
      storageClassName: 'gp3',
      volumeMode: 'Block',
    });
  });

  it('takes its class from the claim’s annotation, then storage.classes, else the same name', () => {
    const annotated = claim({
      'volume.kubernetes.io/selected-node': 'spillway-west',
      'spillway.dev/remote-storage-class': 'io2',
    });
    expect(forgeRemoteClaim(annotated, context).spec?.storageClassName).toBe('io2');
    expect(forgeRemoteClaim(claim(), context).spec?.storageClassName).toBe('gp3');
    expect(forgeRemoteClaim(claim(undefined, 'fast'), context).spec?.storageClassName).toBe('fast');
  });
});

describe('the host volume', () => {
  it('is made once the remote claim exists: bound to the claim, pinned to the node, the class’s policy', () => {
    const [action] = planStorage(
      { claim: claim(), storageClass: storageClass('Retain'), remoteClaim },
      context,
    );
    const made = action?.kind === 'createVolume' ? action.volume : undefined;
    expect(made?.metadata?.name).toBe('pvc-claim-uid');
    expect(made?.metadata?.finalizers).toEqual(['spillway.dev/remote-claim']);
    expect(made?.spec?.claimRef).toMatchObject({ namespace: 'shop', name: 'data-db-0', uid: 'claim-uid' });
    expect(made?.spec?.capacity).toEqual({ storage: '8Gi' });
    expect(made?.spec?.accessModes).toEqual(['ReadWriteOnce', 'ReadOnlyMany']);
    expect(made?.spec?.persistentVolumeReclaimPolicy).toBe('Retain');
    expect(made?.spec?.mountOptions).toEqual(['noatime']);
    expect(made?.spec?.nodeAffinity?.required?.nodeSelectorTerms).toEqual([
      {
        matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['spillway-west'] }],
      },
    ]);
  });
});

describe('the reclaim policy once the host claim goes', () => {
  it('Delete: the remote claim goes first, then the volume', () => {
    expect(planStorage({ volume: volume('Released'), remoteClaim }, context)).toEqual([
      {
        kind: 'deleteRemoteClaim',
        target: { namespace: 'h-shop', name: 'data-db-0.host.spillway-west', uid: 'remote-uid' },
        why: 'its host claim was released (reclaim policy Delete)',
      },
      { kind: 'requeue', afterMs: 1000 },
    ]);
    const deleting = { ...remoteClaim, metadata: { ...remoteClaim.metadata, deletionTimestamp: new Date() } };
    expect(planStorage({ volume: volume('Released'), remoteClaim: deleting }, context)).toEqual([
      { kind: 'requeue', afterMs: 2000 },
    ]);
    expect(planStorage({ volume: volume('Released') }, context)).toEqual([
      {
        kind: 'releaseVolume',
        target: { name: 'pvc-claim-uid', uid: 'pv-uid' },
        resourceVersion: '7',
        delete: true,
      },
    ]);
  });

  it('Retain: both stay; a volume someone deletes only loses the finalizer', () => {
    expect(planStorage({ volume: volume('Released', 'Retain'), remoteClaim }, context)).toEqual([]);
    const deleted = volume('Released', 'Retain', { deletionTimestamp: new Date() });
    expect(planStorage({ volume: deleted, remoteClaim }, context)).toEqual([
      {
        kind: 'releaseVolume',
        target: { name: 'pvc-claim-uid', uid: 'pv-uid' },
        resourceVersion: '7',
        delete: false,
      },
    ]);
  });

  it('a bound volume is left alone; a remote claim whose host claim went before its volume goes', () => {
    expect(planStorage({ volume: volume('Bound'), claim: claim(), remoteClaim }, context)).toEqual([]);
    expect(planStorage({ remoteClaim }, context)).toEqual([
      {
        kind: 'deleteRemoteClaim',
        target: { namespace: 'h-shop', name: 'data-db-0.host.spillway-west', uid: 'remote-uid' },
        why: 'its host claim is gone',
      },
    ]);
  });
});
