// The remote copy of a host ConfigMap or Secret, and whether a copy holds what it should. Pure.
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { LABEL_HOST_CLUSTER, LABEL_MANAGED_BY, LABEL_VIRTUAL_NODE, MANAGED_BY_VALUE } from '../ownership.ts';
import { delegateNamespace } from './forge.ts';
import type { HostObject } from './host-objects.ts';
import { type ReferenceKind, reflectedName } from './references.ts';

export const LABEL_REFLECTED = 'spillway.dev/reflected';
export const ANNOTATION_SOURCE = 'spillway.dev/source';
export const ANNOTATION_SOURCE_VERSION = 'spillway.dev/source-resource-version';
/** The field manager of every copy Spillway writes (server-side apply). */
export const FIELD_MANAGER = 'spillway';

export type Reflectable = V1ConfigMap & V1Secret;

export interface CopyScope {
  readonly hostClusterName: string;
  readonly nodeName: string;
  readonly namespacePrefix: string;
}

/** Where the copy of a host object lives in the remote. */
export function copyName(
  kind: ReferenceKind,
  hostNamespace: string,
  name: string,
  scope: CopyScope,
): { kind: ReferenceKind; namespace: string; name: string } {
  return {
    kind,
    namespace: delegateNamespace(hostNamespace, scope.namespacePrefix),
    name: reflectedName(name, scope),
  };
}

/** The copy as Spillway applies it: the host object's content, with ownership marks and its source. */
export function desiredCopy(kind: ReferenceKind, source: HostObject, scope: CopyScope): Reflectable {
  const target = copyName(kind, source.metadata.namespace, source.metadata.name, scope);
  const copy: Reflectable = {
    apiVersion: 'v1',
    kind,
    metadata: {
      name: target.name,
      namespace: target.namespace,
      labels: {
        [LABEL_MANAGED_BY]: MANAGED_BY_VALUE,
        [LABEL_HOST_CLUSTER]: scope.hostClusterName,
        [LABEL_VIRTUAL_NODE]: scope.nodeName,
        [LABEL_REFLECTED]: kind,
      },
      annotations: {
        [ANNOTATION_SOURCE]: `${source.metadata.namespace}/${source.metadata.name}`,
        [ANNOTATION_SOURCE_VERSION]: source.metadata.resourceVersion ?? '',
      },
    },
  };
  if (source.data) copy.data = source.data;
  if (kind === 'ConfigMap' && source.binaryData) copy.binaryData = source.binaryData;
  // A service-account token Secret would be claimed (and emptied) by the remote's token controller.
  if (kind === 'Secret') {
    copy.type = source.type === 'kubernetes.io/service-account-token' ? 'Opaque' : (source.type ?? 'Opaque');
  }
  return copy;
}

/** Whether the copy holds what we would write (ownership marks, source, content). */
export function sameContent(copy: Reflectable, desired: Reflectable): boolean {
  const labels = desired.metadata?.labels ?? {};
  if (Object.entries(labels).some(([k, v]) => copy.metadata?.labels?.[k] !== v)) return false;
  if (
    copy.metadata?.annotations?.[ANNOTATION_SOURCE] !== desired.metadata?.annotations?.[ANNOTATION_SOURCE]
  ) {
    return false;
  }
  return (
    sameMap(copy.data, desired.data) &&
    sameMap(copy.binaryData, desired.binaryData) &&
    (desired.type === undefined || copy.type === desired.type)
  );
}

function sameMap(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const x = a ?? {};
  const y = b ?? {};
  const keys = Object.keys(x);
  return keys.length === Object.keys(y).length && keys.every((k) => x[k] === y[k]);
}
