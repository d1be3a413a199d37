// A host namespace's offloading policy, from its annotations, pure:
//   spillway.dev/remote-clusters: "eu-*,us-east"   which remote clusters its pods may use (glob patterns;
//                                                  the burst webhook turns it into required node affinity,
//                                                  and a pod that lands elsewhere anyway is refused)
//   spillway.dev/remote-namespace-naming: prefix | same   how its remote namespace is named
//   spillway.dev/remote-namespace: <name>          an explicit remote namespace
// Naming annotations are honoured only with namespaces.mappingAnnotations (an opt-in). Two host
// namespaces never share one remote namespace: the one whose delegates are already there keeps it (else
// the older namespace), the other is refused with an event. A namespace's remote namespace only changes
// once none of its delegates run in the old one (its running pods are never split over two).
import { dnsLabel } from '../config/fields.ts';
import type { HostNamespace } from './host-namespaces.ts';

export const ANNOTATION_REMOTE_CLUSTERS = 'spillway.dev/remote-clusters';
export const ANNOTATION_REMOTE_NAMESPACE = 'spillway.dev/remote-namespace';
export const ANNOTATION_REMOTE_NAMESPACE_NAMING = 'spillway.dev/remote-namespace-naming';

export interface MappingPolicy {
  /** pods.namespacePrefix: the default remote namespace is prefix + host namespace. */
  readonly prefix: string;
  /** namespaces.mappingAnnotations. */
  readonly annotations: boolean;
  /** namespaces.reserved: never a mapping's target. */
  readonly reserved: ReadonlySet<string>;
}

export type Mapping =
  | { readonly remote: string }
  | { readonly refusal: { readonly reason: string; readonly message: string } };

/** The remote namespace a host namespace asks for, by its annotations (or the default prefix). */
export function requestedMapping(
  namespace: HostNamespace | undefined,
  name: string,
  policy: MappingPolicy,
): Mapping {
  const annotations = namespace?.metadata.annotations ?? {};
  const explicit = annotations[ANNOTATION_REMOTE_NAMESPACE];
  const naming = annotations[ANNOTATION_REMOTE_NAMESPACE_NAMING];
  const fallback = { remote: `${policy.prefix}${name}` };
  if (!policy.annotations || (explicit === undefined && naming === undefined)) return fallback;
  let remote: string;
  if (explicit !== undefined) {
    if (naming !== undefined && naming !== 'explicit') {
      return invalid(
        name,
        `${ANNOTATION_REMOTE_NAMESPACE} and ${ANNOTATION_REMOTE_NAMESPACE_NAMING}: ${naming} disagree`,
      );
    }
    remote = explicit;
  } else if (naming === 'same') {
    remote = name;
  } else if (naming === 'prefix') {
    return fallback;
  } else {
    return invalid(
      name,
      `${ANNOTATION_REMOTE_NAMESPACE_NAMING}: "${naming}" is not one of prefix, same (or set ${ANNOTATION_REMOTE_NAMESPACE})`,
    );
  }
  if (!dnsLabel.test(remote)) return invalid(name, `"${remote}" is not a valid namespace name`);
  if (policy.reserved.has(remote)) {
    return invalid(name, `remote namespace "${remote}" is reserved (namespaces.reserved)`);
  }
  return { remote };
}

function invalid(name: string, why: string): Mapping {
  return { refusal: { reason: 'InvalidRemoteNamespace', message: `namespace ${name}: ${why}` } };
}

/**
 * Every host namespace's remote namespace on one virtual node. `inUse` says where a namespace's
 * delegates already are (that wins over a changed annotation while any runs). Conflicts: of the host
 * namespaces mapping to one remote name, the one already using it keeps it, else the oldest.
 */
export function resolveMappings(
  namespaces: readonly HostNamespace[],
  policy: MappingPolicy,
  inUse: (hostNamespace: string) => string | undefined,
): Map<string, Mapping> {
  const result = new Map<string, Mapping>();
  const claims = new Map<string, HostNamespace[]>();
  for (const namespace of namespaces) {
    const name = namespace.metadata.name;
    const used = inUse(name);
    const mapping: Mapping = used ? { remote: used } : requestedMapping(namespace, name, policy);
    result.set(name, mapping);
    if ('remote' in mapping) claims.set(mapping.remote, [...(claims.get(mapping.remote) ?? []), namespace]);
  }
  for (const [remote, claimants] of claims) {
    if (claimants.length < 2) continue;
    const holders = claimants.filter((n) => inUse(n.metadata.name) === remote);
    const winner =
      holders.length === 1 ? holders[0] : [...(holders.length > 0 ? holders : claimants)].sort(older)[0];
    for (const loser of claimants) {
      if (loser === winner) continue;
      result.set(loser.metadata.name, {
        refusal: {
          reason: 'RemoteNamespaceConflict',
          message: `namespace ${loser.metadata.name} maps to remote namespace "${remote}", which namespace ${winner?.metadata.name} uses; one remote namespace serves one host namespace`,
        },
      });
    }
  }
  return result;
}

function older(a: HostNamespace, b: HostNamespace): number {
  const x = a.metadata.creationTimestamp ?? '';
  const y = b.metadata.creationTimestamp ?? '';
  return x === y ? a.metadata.name.localeCompare(b.metadata.name) : x.localeCompare(y);
}

/** The remote-cluster patterns of a namespace, or undefined when it sets none (every remote may be used). */
export function remotePatterns(namespace: HostNamespace | undefined): string[] | undefined {
  const value = namespace?.metadata.annotations[ANNOTATION_REMOTE_CLUSTERS];
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

/** Whether a remote's name matches one of the glob patterns (`*` any run of characters, `?` one). */
export function matchesPatterns(remoteName: string, patterns: readonly string[]): boolean {
  return patterns.some((pattern) => {
    const source = pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    return new RegExp(`^${source}$`).test(remoteName);
  });
}

/** Why a pod of this namespace may not run on this remote, if it may not. */
export function remoteRefusal(
  namespace: HostNamespace | undefined,
  name: string,
  remoteName: string,
): { reason: string; message: string } | undefined {
  const patterns = remotePatterns(namespace);
  if (patterns === undefined || matchesPatterns(remoteName, patterns)) return undefined;
  return {
    reason: 'RemoteClusterNotAllowed',
    message: `Pod was rejected: namespace ${name} allows remote clusters matching "${patterns.join(',')}" (${ANNOTATION_REMOTE_CLUSTERS}), not ${remoteName}`,
  };
}
