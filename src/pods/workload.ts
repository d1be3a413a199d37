// The part of forging a delegate that ties it to what the host pod uses besides its containers:
// service-account tokens (tokens.ts), the downward API (downward.ts), the pod's own Secret that carries
// both (pod-secret.ts), reflected ConfigMaps and Secrets (references.ts) and claims provisioned in the
// remote (src/storage/). Pure; forge.ts calls it on the delegate's spec.
import type { V1Pod, V1PodSpec, V1Volume } from '@kubernetes/client-node';
import { downwardData, projectDownwardFrom, resolveDownwardEnv } from './downward.ts';
import { hashOf, type PodSecretSpec, podSecretName } from './pod-secret.ts';
import { type Reference, type ReflectionScope, referencesOf, rewriteReferences } from './references.ts';
import {
  dropTokenVolumes,
  type HostApiServer,
  isTokenVolume,
  pointAtHostApi,
  projectTokensFrom,
  type TokenMode,
  takeTokenVolumes,
  tokenSources,
} from './tokens.ts';

export interface WorkloadContext {
  /** The pod's service-account mode (the planner refuses pods whose choice is not allowed, before forging). */
  readonly tokenMode: (pod: V1Pod) => TokenMode;
  readonly externalServer?: HostApiServer;
  /** The remote claim a host claim was provisioned as for this node (undefined: it was not). */
  readonly remoteClaim: (hostNamespace: string, claimName: string) => string | undefined;
}

/** The claim a generic ephemeral volume's controller creates for it. */
export function ephemeralClaimName(podName: string, volumeName: string): string {
  return `${podName}-${volumeName}`;
}

/** The ConfigMaps and Secrets the delegate will use, as copies (the token volumes, by mode). */
export function workloadReferences(hostSpec: V1PodSpec | undefined, mode: TokenMode): Reference[] {
  if (!hostSpec) return [];
  const spec = structuredClone(hostSpec);
  if (mode === 'host') return referencesOf(spec);
  if (mode === 'remote') takeTokenVolumes(spec);
  else dropTokenVolumes(spec);
  return referencesOf(spec);
}

/** What the pod's own Secret must hold, or undefined when the pod needs none (nothing host-only to carry). */
export function podSecretSpec(
  hostPod: V1Pod,
  scope: ReflectionScope,
  remoteNamespace: string,
  mode: TokenMode,
): PodSecretSpec | undefined {
  const tokens = mode === 'host' ? tokenSources(hostPod.spec) : [];
  const skip = mode === 'host' ? new Set<string>() : tokenVolumeNames(hostPod.spec);
  const downward = downwardData(hostPod, skip);
  if (tokens.length === 0 && Object.keys(downward).length === 0) return undefined;
  return {
    namespace: remoteNamespace,
    name: podSecretName(hostPod.metadata?.name ?? '', scope),
    serviceAccount: hostPod.spec?.serviceAccountName ?? 'default',
    tokens,
    downward,
    downwardHash: hashOf(downward),
  };
}

/** Token volumes are not the pod's own files in modes remote (the remote's) and none (dropped). */
function tokenVolumeNames(spec: V1PodSpec | undefined): Set<string> {
  return new Set((spec?.volumes ?? []).filter(isTokenVolume).map((v) => v.name));
}

/** Rewrites the delegate's spec: tokens by mode, references to copies, host-only downward fields, claims. */
export function forgeWorkload(
  spec: V1PodSpec,
  hostPod: V1Pod,
  scope: ReflectionScope,
  workload: WorkloadContext | undefined,
): void {
  const mode = workload?.tokenMode(hostPod) ?? 'none';
  const secretName = podSecretName(hostPod.metadata?.name ?? '', scope);
  let aside: V1Volume[] = [];
  if (mode === 'remote') {
    // The remote kubelet fills them for the remote ServiceAccount, with the remote's CA and namespace.
    aside = takeTokenVolumes(spec);
  } else if (mode === 'none') {
    dropTokenVolumes(spec);
  }
  if (mode === 'remote') {
    spec.serviceAccountName = hostPod.spec?.serviceAccountName ?? 'default';
  } else {
    // The remote namespace's default account, without a token: the remote must not mount its own.
    spec.automountServiceAccountToken = false;
    delete spec.serviceAccountName;
  }
  delete (spec as { serviceAccount?: string }).serviceAccount;
  rewriteReferences(spec, scope);
  if (aside.length > 0) spec.volumes = [...(spec.volumes ?? []), ...aside];
  if (mode === 'host') {
    projectTokensFrom(spec, secretName);
    if (workload?.externalServer) pointAtHostApi(spec, workload.externalServer);
  }
  resolveDownwardEnv(spec, hostPod);
  // Mode remote: the token volumes' namespace file is the remote's, as the remote token is for it.
  projectDownwardFrom(spec, secretName, mode === 'remote' ? tokenVolumeNames(hostPod.spec) : new Set());
  if (workload) useRemoteClaims(spec, hostPod, workload);
}

/** Claims (and generic ephemeral volumes, whose claims the host made) point at their remote claims. */
function useRemoteClaims(spec: V1PodSpec, hostPod: V1Pod, workload: WorkloadContext): void {
  const namespace = hostPod.metadata?.namespace ?? '';
  spec.volumes = spec.volumes?.map((volume) => {
    const claim = volume.persistentVolumeClaim;
    if (claim) {
      const remote = workload.remoteClaim(namespace, claim.claimName);
      return remote ? { ...volume, persistentVolumeClaim: { ...claim, claimName: remote } } : volume;
    }
    if (volume.ephemeral) {
      const remote = workload.remoteClaim(
        namespace,
        ephemeralClaimName(hostPod.metadata?.name ?? '', volume.name),
      );
      if (!remote) return volume;
      const { ephemeral: _ephemeral, ...rest } = volume;
      return { ...rest, persistentVolumeClaim: { claimName: remote } };
    }
    return volume;
  });
}
