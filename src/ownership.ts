// The marks by which Spillway recognises what it owns, in the host cluster (virtual nodes) and in
// remote clusters (delegate pods, namespaces, reflected ConfigMaps and Secrets). Several host clusters
// may share one remote: every mark carries the host cluster's name, and nothing without our marks is
// ever adopted, changed or deleted.

export const LABEL_MANAGED_BY = 'spillway.dev/managed-by';
export const MANAGED_BY_VALUE = 'spillway';
/** The host cluster a delegate (or reflected object) belongs to: `hostClusterName` from the configuration. */
export const LABEL_HOST_CLUSTER = 'spillway.dev/host-cluster';
/** The UID of the host pod a delegate mirrors; a re-created namesake has another UID. */
export const LABEL_HOST_POD_UID = 'spillway.dev/host-pod-uid';
/** The virtual node a delegate (or reflected object) was created for; several may share one remote. */
export const LABEL_VIRTUAL_NODE = 'spillway.dev/virtual-node';
/** The remote cluster a virtual node stands for. */
export const LABEL_CLUSTER = 'spillway.dev/cluster';

/** Label selector for everything this host cluster's Spillway created in a remote cluster. */
export function ownedSelector(hostClusterName: string): string {
  return `${LABEL_MANAGED_BY}=${MANAGED_BY_VALUE},${LABEL_HOST_CLUSTER}=${hostClusterName}`;
}

export function isOwnedObject(
  labels: Readonly<Record<string, string>> | undefined,
  hostClusterName: string,
): boolean {
  return labels?.[LABEL_MANAGED_BY] === MANAGED_BY_VALUE && labels?.[LABEL_HOST_CLUSTER] === hostClusterName;
}

/** The marks of an object this host cluster's Spillway made in a remote for one virtual node. */
export function ownershipLabels(hostClusterName: string, nodeName: string): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY_VALUE,
    [LABEL_HOST_CLUSTER]: hostClusterName,
    [LABEL_VIRTUAL_NODE]: nodeName,
  };
}
