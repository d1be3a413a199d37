// The ConfigMaps and Secrets a pod uses (volumes, projected volumes, env, envFrom, imagePullSecrets),
// and the renaming of those references to the reflected copies in the remote cluster. Pure functions.
import { createHash } from 'node:crypto';
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';

export type ReferenceKind = 'ConfigMap' | 'Secret';

export interface Reference {
  readonly kind: ReferenceKind;
  readonly name: string;
  /** An optional reference: a missing object is no reason to hold the pod back. */
  readonly optional: boolean;
}

export function referenceKey(kind: ReferenceKind, namespace: string, name: string): string {
  return `${kind}/${namespace}/${name}`;
}

type Visitor = (kind: ReferenceKind, name: string, optional: boolean) => string;

/** Walks every reference in the spec, replacing each name with what the visitor returns. */
function visit(spec: V1PodSpec, visitor: Visitor): void {
  for (const volume of spec.volumes ?? []) {
    if (volume.configMap?.name)
      volume.configMap.name = visitor('ConfigMap', volume.configMap.name, volume.configMap.optional === true);
    if (volume.secret?.secretName)
      volume.secret.secretName = visitor('Secret', volume.secret.secretName, volume.secret.optional === true);
    for (const source of volume.projected?.sources ?? []) {
      if (source.configMap?.name)
        source.configMap.name = visitor(
          'ConfigMap',
          source.configMap.name,
          source.configMap.optional === true,
        );
      if (source.secret?.name)
        source.secret.name = visitor('Secret', source.secret.name, source.secret.optional === true);
    }
  }
  const containers: V1Container[] = [
    ...(spec.initContainers ?? []),
    ...(spec.containers ?? []),
    ...((spec.ephemeralContainers ?? []) as V1Container[]),
  ];
  for (const container of containers) {
    for (const env of container.env ?? []) {
      const cm = env.valueFrom?.configMapKeyRef;
      if (cm?.name) cm.name = visitor('ConfigMap', cm.name, cm.optional === true);
      const secret = env.valueFrom?.secretKeyRef;
      if (secret?.name) secret.name = visitor('Secret', secret.name, secret.optional === true);
    }
    for (const from of container.envFrom ?? []) {
      if (from.configMapRef?.name)
        from.configMapRef.name = visitor(
          'ConfigMap',
          from.configMapRef.name,
          from.configMapRef.optional === true,
        );
      if (from.secretRef?.name)
        from.secretRef.name = visitor('Secret', from.secretRef.name, from.secretRef.optional === true);
    }
  }
  for (const pullSecret of spec.imagePullSecrets ?? []) {
    // An image pull secret that is missing does not stop a kubelet either; it only fails private pulls.
    if (pullSecret.name) pullSecret.name = visitor('Secret', pullSecret.name, true);
  }
}

/** The references of a pod spec, de-duplicated; a reference is mandatory if any use of it is. */
export function referencesOf(spec: V1PodSpec | undefined): Reference[] {
  if (!spec) return [];
  const found = new Map<string, Reference>();
  visit(structuredClone(spec), (kind, name, optional) => {
    const key = `${kind}/${name}`;
    const previous = found.get(key);
    found.set(key, { kind, name, optional: (previous?.optional ?? true) && optional });
    return name;
  });
  return [...found.values()];
}

/**
 * The name of the reflected copy in the remote: the original name, then the host cluster's and the
 * virtual node's names, so that several host clusters (or virtual nodes) sharing one remote namespace
 * never collide with each other nor with the remote's own objects. At most 253 characters.
 */
export function reflectedName(name: string, scope: ReflectionScope): string {
  // A label value may hold characters (upper case, "_") that object names may not.
  const host =
    scope.hostClusterName
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-')
      .replace(/^-+|-+$/g, '') || 'host';
  const suffix = `${host}.${scope.nodeName}`;
  const candidate = `${name}.${suffix}`;
  if (candidate.length <= 253) return candidate;
  const hash = createHash('sha256').update(candidate).digest('hex').slice(0, 10);
  return `${name.slice(0, 253 - suffix.length - 12)}-${hash}.${suffix}`;
}

export interface ReflectionScope {
  readonly hostClusterName: string;
  readonly nodeName: string;
}

/** Rewrites the spec in place so it uses the reflected copies. */
export function rewriteReferences(spec: V1PodSpec, scope: ReflectionScope): void {
  visit(spec, (_kind, name) => reflectedName(name, scope));
}
