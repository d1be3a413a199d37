// Storage for pods on virtual nodes, pure. A host claim of a StorageClass whose provisioner is Spillway's,
// for which the host scheduler selected one of Spillway's virtual nodes (WaitForFirstConsumer), is
// provisioned where the pod will run: a claim in the remote namespace (same StorageClass name unless
// mapped, access modes and size kept, `<claim>.<host cluster>.<node>`), then a PersistentVolume in the
// host that Spillway makes, pre-bound to the host claim and pinned to the virtual node by node affinity,
// so the pod (and a StatefulSet's next pod of that identity) is always placed where its data is. When
// the host claim goes, its volume is released and the reclaim policy decides: Delete deletes the remote
// claim, then the volume; Retain keeps both.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { ownershipLabels } from '../ownership.ts';
import { ANNOTATION_SOURCE, LABEL_REFLECTED } from '../pods/copies.ts';
import { type ReflectionScope, reflectedName } from '../pods/references.ts';
import { ANNOTATION_SELECTED_NODE } from './host-volumes.ts';

export const CSI_DRIVER = 'spillway.dev';
/** On a host volume: the remote claim it stands for (namespace/name). */
export const ANNOTATION_REMOTE_CLAIM = 'spillway.dev/remote-claim';
/** On a host claim: the remote StorageClass to use instead of the same name. */
export const ANNOTATION_REMOTE_STORAGE_CLASS = 'spillway.dev/remote-storage-class';
/** Holds a host volume until its remote claim is dealt with by its reclaim policy. */
export const FINALIZER_REMOTE_CLAIM = 'spillway.dev/remote-claim';
const ANNOTATION_PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
/** On a remote claim: the UID of the host claim it stands for (a namesake later is another claim). */
export const LABEL_HOST_CLAIM_UID = 'spillway.dev/host-claim-uid';

export interface StorageContext {
  readonly scope: ReflectionScope;
  readonly remoteName: string;
  /** storage.provisioner: host StorageClasses with it are Spillway's. */
  readonly provisioner: string;
  /** storage.classes: host class → remote class. */
  readonly classes: Readonly<Record<string, string>>;
  readonly remoteNamespace: (hostNamespace: string) => string;
}

export interface Target {
  readonly namespace?: string;
  readonly name: string;
  readonly uid: string;
}

export type StorageAction =
  | { readonly kind: 'createRemoteClaim'; readonly claim: V1PersistentVolumeClaim }
  | { readonly kind: 'createVolume'; readonly volume: V1PersistentVolume }
  | { readonly kind: 'deleteRemoteClaim'; readonly target: Target; readonly why: string }
  /** The volume's work is done: its finalizer comes off (resourceVersion precondition) and, unless kept, it goes. */
  | {
      readonly kind: 'releaseVolume';
      readonly target: Target;
      readonly resourceVersion: string;
      readonly delete: boolean;
    }
  | { readonly kind: 'requeue'; readonly afterMs: number };

export interface StorageInputs {
  readonly claim?: V1PersistentVolumeClaim;
  /** Spillway's volume for this claim on this node (by its claimRef). */
  readonly volume?: V1PersistentVolume;
  /** Spillway's remote claim for it. */
  readonly remoteClaim?: V1PersistentVolumeClaim;
  readonly storageClass?: V1StorageClass;
}

/** The name of the host volume Spillway makes for a claim (as dynamic provisioners name theirs). */
export function volumeName(claim: V1PersistentVolumeClaim): string {
  return `pvc-${claim.metadata?.uid}`;
}

export function remoteClaimName(claimName: string, scope: ReflectionScope): string {
  return reflectedName(claimName, scope);
}

/** Whether the claim is Spillway's to provision for this virtual node. */
export function isOurs(
  claim: V1PersistentVolumeClaim,
  storageClass: V1StorageClass | undefined,
  context: StorageContext,
): boolean {
  return (
    storageClass?.provisioner === context.provisioner &&
    claim.metadata?.annotations?.[ANNOTATION_SELECTED_NODE] === context.scope.nodeName
  );
}

const refOf = (object: { metadata?: { namespace?: string; name?: string; uid?: string } }): Target => ({
  ...(object.metadata?.namespace ? { namespace: object.metadata.namespace } : {}),
  name: object.metadata?.name ?? '',
  uid: object.metadata?.uid ?? '',
});

export function planStorage(inputs: StorageInputs, context: StorageContext): StorageAction[] {
  const { claim, volume, remoteClaim, storageClass } = inputs;
  if (volume) return planVolume(volume, claim, remoteClaim);
  if (!claim || claim.metadata?.deletionTimestamp) {
    // A remote claim without its volume (the host claim went before its volume was made): nothing was
    // ever bound to it on the host, so nothing is kept.
    return remoteClaim && !remoteClaim.metadata?.deletionTimestamp
      ? [{ kind: 'deleteRemoteClaim', target: refOf(remoteClaim), why: 'its host claim is gone' }]
      : [];
  }
  if (claim.spec?.volumeName || !isOurs(claim, storageClass, context)) return [];
  if (!remoteClaim) return [{ kind: 'createRemoteClaim', claim: forgeRemoteClaim(claim, context) }];
  return [
    {
      kind: 'createVolume',
      volume: forgeVolume(claim, remoteClaim, storageClass as V1StorageClass, context),
    },
  ];
}

function planVolume(
  volume: V1PersistentVolume,
  claim: V1PersistentVolumeClaim | undefined,
  remoteClaim: V1PersistentVolumeClaim | undefined,
): StorageAction[] {
  const claimGone = !claim || claim.metadata?.uid !== volume.spec?.claimRef?.uid;
  const released = volume.status?.phase === 'Released' || (claimGone && volume.status?.phase !== 'Pending');
  const deleting = volume.metadata?.deletionTimestamp !== undefined;
  if (!released && !deleting) return [];
  const keep = (volume.spec?.persistentVolumeReclaimPolicy ?? 'Delete') !== 'Delete';
  const release: StorageAction = {
    kind: 'releaseVolume',
    target: refOf(volume),
    resourceVersion: volume.metadata?.resourceVersion ?? '',
    delete: !keep && !deleting,
  };
  if (keep) {
    // Retain: the remote claim (and its data) stays; a volume someone deletes only loses our finalizer.
    return deleting ? [release] : [];
  }
  if (remoteClaim) {
    if (remoteClaim.metadata?.deletionTimestamp) return [{ kind: 'requeue', afterMs: 2000 }];
    return [
      {
        kind: 'deleteRemoteClaim',
        target: refOf(remoteClaim),
        why: 'its host claim was released (reclaim policy Delete)',
      },
      { kind: 'requeue', afterMs: 1000 },
    ];
  }
  return [release];
}

export function forgeRemoteClaim(
  claim: V1PersistentVolumeClaim,
  context: StorageContext,
): V1PersistentVolumeClaim {
  const hostClass = claim.spec?.storageClassName ?? '';
  const remoteClass =
    claim.metadata?.annotations?.[ANNOTATION_REMOTE_STORAGE_CLASS] ?? context.classes[hostClass] ?? hostClass;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: remoteClaimName(claim.metadata?.name ?? '', context.scope),
      namespace: context.remoteNamespace(claim.metadata?.namespace ?? ''),
      labels: {
        ...ownershipLabels(context.scope.hostClusterName, context.scope.nodeName),
        [LABEL_REFLECTED]: 'PersistentVolumeClaim',
        [LABEL_HOST_CLAIM_UID]: claim.metadata?.uid ?? '',
      },
      annotations: { [ANNOTATION_SOURCE]: `${claim.metadata?.namespace}/${claim.metadata?.name}` },
    },
    spec: {
      accessModes: claim.spec?.accessModes,
      resources: { requests: claim.spec?.resources?.requests },
      storageClassName: remoteClass,
      ...(claim.spec?.volumeMode ? { volumeMode: claim.spec.volumeMode } : {}),
    },
  };
}

export function forgeVolume(
  claim: V1PersistentVolumeClaim,
  remoteClaim: V1PersistentVolumeClaim,
  storageClass: V1StorageClass,
  context: StorageContext,
): V1PersistentVolume {
  const remote = `${remoteClaim.metadata?.namespace}/${remoteClaim.metadata?.name}`;
  const capacity = remoteClaim.status?.capacity?.storage ?? claim.spec?.resources?.requests?.storage ?? '0';
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: volumeName(claim),
      labels: ownershipLabels(context.scope.hostClusterName, context.scope.nodeName),
      annotations: {
        [ANNOTATION_PROVISIONED_BY]: context.provisioner,
        [ANNOTATION_REMOTE_CLAIM]: remote,
        'spillway.dev/remote-cluster': context.remoteName,
      },
      finalizers: [FINALIZER_REMOTE_CLAIM],
    },
    spec: {
      capacity: { storage: capacity },
      accessModes: claim.spec?.accessModes,
      claimRef: {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        namespace: claim.metadata?.namespace,
        name: claim.metadata?.name,
        uid: claim.metadata?.uid,
      },
      persistentVolumeReclaimPolicy: storageClass.reclaimPolicy ?? 'Delete',
      storageClassName: claim.spec?.storageClassName,
      ...(claim.spec?.volumeMode ? { volumeMode: claim.spec.volumeMode } : {}),
      ...(storageClass.mountOptions ? { mountOptions: storageClass.mountOptions } : {}),
      // No kubelet ever mounts it: the pod runs in the remote, on the claim it names.
      csi: { driver: CSI_DRIVER, volumeHandle: `${context.remoteName}/${remote}` },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'kubernetes.io/hostname', operator: 'In', values: [context.scope.nodeName] },
              ],
            },
          ],
        },
      },
    },
  };
}

/** The remote claim of a host volume of this node (its name, in the remote namespace it was made in). */
export function remoteClaimOf(volume: V1PersistentVolume | undefined, nodeName: string): string | undefined {
  if (volume?.metadata?.labels?.['spillway.dev/virtual-node'] !== nodeName) return undefined;
  const remote = volume.metadata?.annotations?.[ANNOTATION_REMOTE_CLAIM];
  return remote ? remote.slice(remote.indexOf('/') + 1) : undefined;
}
