// Service-account tokens of delegates, pure. A host pod that mounts a service-account token gets, in
// its remote cluster, one of three things (chosen per pod by annotation, else by configuration):
//   host   — a token of its host ServiceAccount, requested from the host (TokenRequest bound to the host
//            pod) and kept in the pod's own Secret in the remote; the host's CA (kube-root-ca.crt,
//            reflected) beside it at the same paths; KUBERNETES_SERVICE_HOST/PORT at host.externalServer.
//   remote — the remote's own: the remote namespace's ServiceAccount of the same name, whose token the
//            remote kubelet mounts (the pod's projected token volumes are left to it unchanged).
//   none   — no token at all (the remote namespace's default ServiceAccount, automount off).
import { isIP } from 'node:net';
import type { V1Container, V1EnvVar, V1PodSpec, V1Volume } from '@kubernetes/client-node';

export const ANNOTATION_SERVICE_ACCOUNT_API = 'spillway.dev/service-account-api';
export const TOKEN_MODES = ['host', 'remote', 'none'] as const;
export type TokenMode = (typeof TOKEN_MODES)[number];

/** What a TokenRequest asks for when the projected source does not say (the API server's own default). */
export const DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600;

export interface HostApiServer {
  readonly host: string;
  readonly port: number;
}

export interface TokenPolicy {
  /** The mode of pods without the annotation. */
  readonly defaultMode: TokenMode;
  /** host.externalServer, parsed: where delegates reach the host API. */
  readonly externalServer?: HostApiServer;
  readonly allowRemote: boolean;
  /** A token is requested again once it is this old, even before 80 % of its lifetime. */
  readonly maxTokenAgeMs: number;
}

export type TokenChoice =
  | { readonly mode: TokenMode }
  | { readonly refusal: { readonly reason: string; readonly message: string } };

export function parseExternalServer(url: string | undefined): HostApiServer | undefined {
  if (!url) return undefined;
  const parsed = new URL(url);
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 443) };
}

/** The pod's mode: its annotation if valid and allowed, else the configured default. */
export function tokenChoice(
  annotations: Record<string, string> | undefined,
  policy: TokenPolicy,
): TokenChoice {
  const asked = annotations?.[ANNOTATION_SERVICE_ACCOUNT_API];
  if (asked === undefined) return { mode: policy.defaultMode };
  if (!(TOKEN_MODES as readonly string[]).includes(asked)) {
    return {
      refusal: {
        reason: 'InvalidServiceAccountAPI',
        message: `annotation ${ANNOTATION_SERVICE_ACCOUNT_API}: "${asked}" is not one of host, remote, none`,
      },
    };
  }
  const mode = asked as TokenMode;
  if (mode === 'host' && !policy.externalServer) {
    return {
      refusal: {
        reason: 'HostAPIUnavailable',
        message: `the pod asks for the host's API (${ANNOTATION_SERVICE_ACCOUNT_API}: host), but Spillway has no host.externalServer that remote clusters can reach`,
      },
    };
  }
  if (mode === 'remote' && !policy.allowRemote) {
    return {
      refusal: {
        reason: 'RemoteServiceAccountNotAllowed',
        message: `the pod asks for the remote's API (${ANNOTATION_SERVICE_ACCOUNT_API}: remote), which pods.serviceAccounts.allowRemote does not allow`,
      },
    };
  }
  return { mode };
}

/** One serviceAccountToken source of the pod: its key in the pod's Secret and what its TokenRequest asks. */
export interface TokenSource {
  readonly key: string;
  readonly audience?: string;
  readonly expirationSeconds: number;
}

export function isTokenVolume(volume: V1Volume): boolean {
  return volume.projected?.sources?.some((s) => s.serviceAccountToken) === true;
}

/** Every serviceAccountToken source, in volume order (the same order names their keys everywhere). */
export function tokenSources(spec: V1PodSpec | undefined): TokenSource[] {
  const sources: TokenSource[] = [];
  for (const volume of spec?.volumes ?? []) {
    for (const source of volume.projected?.sources ?? []) {
      const token = source.serviceAccountToken;
      if (!token) continue;
      sources.push({
        key: `token-${sources.length}`,
        ...(token.audience ? { audience: token.audience } : {}),
        expirationSeconds: token.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS,
      });
    }
  }
  return sources;
}

function allContainers(spec: V1PodSpec): V1Container[] {
  return [
    ...(spec.initContainers ?? []),
    ...spec.containers,
    ...((spec.ephemeralContainers ?? []) as V1Container[]),
  ];
}

/** Removes the token volumes (and their mounts) from the spec and returns them. */
export function takeTokenVolumes(spec: V1PodSpec): V1Volume[] {
  const taken = (spec.volumes ?? []).filter(isTokenVolume);
  if (taken.length === 0) return [];
  const names = new Set(taken.map((v) => v.name));
  spec.volumes = spec.volumes?.filter((v) => !names.has(v.name));
  if (spec.volumes?.length === 0) delete spec.volumes;
  return taken;
}

/** The host's token volumes are useless remotely (mode none): volumes and mounts go. */
export function dropTokenVolumes(spec: V1PodSpec): void {
  const names = new Set(takeTokenVolumes(spec).map((v) => v.name));
  if (names.size === 0) return;
  for (const container of allContainers(spec)) {
    container.volumeMounts = container.volumeMounts?.filter((m) => !names.has(m.name));
    if (container.volumeMounts?.length === 0) delete container.volumeMounts;
  }
}

/** Mode host: each serviceAccountToken source becomes an item of the pod's Secret, at the same path. */
export function projectTokensFrom(spec: V1PodSpec, secretName: string): void {
  let index = 0;
  for (const volume of spec.volumes ?? []) {
    const projected = volume.projected;
    if (!projected?.sources) continue;
    projected.sources = projected.sources.map((source) => {
      const token = source.serviceAccountToken;
      if (!token) return source;
      const key = `token-${index++}`;
      return { secret: { name: secretName, items: [{ key, path: token.path }] } };
    });
  }
}

/** The variables a kubelet sets for the `kubernetes` Service, pointing at the host API instead. */
export function hostApiEnv(server: HostApiServer): V1EnvVar[] {
  const address = isIP(server.host) === 6 ? `[${server.host}]` : server.host;
  const port = String(server.port);
  const url = `tcp://${address}:${port}`;
  return [
    { name: 'KUBERNETES_SERVICE_HOST', value: server.host },
    { name: 'KUBERNETES_SERVICE_PORT', value: port },
    { name: 'KUBERNETES_SERVICE_PORT_HTTPS', value: port },
    { name: 'KUBERNETES_PORT', value: url },
    { name: 'KUBERNETES_PORT_443_TCP', value: url },
    { name: 'KUBERNETES_PORT_443_TCP_PROTO', value: 'tcp' },
    { name: 'KUBERNETES_PORT_443_TCP_PORT', value: port },
    { name: 'KUBERNETES_PORT_443_TCP_ADDR', value: server.host },
  ];
}

/**
 * Mode host: every container sees the host API where in-cluster clients look for it (a variable the
 * pod sets itself wins), and `kubernetes.default…` resolves to it when it is an IP address.
 */
export function pointAtHostApi(spec: V1PodSpec, server: HostApiServer): void {
  const variables = hostApiEnv(server);
  for (const container of allContainers(spec)) {
    const own = new Set((container.env ?? []).map((e) => e.name));
    const added = variables.filter((v) => !own.has(v.name));
    if (added.length > 0) container.env = [...(container.env ?? []), ...added];
  }
  if (isIP(server.host) !== 0 && !spec.hostNetwork) {
    const names = [
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ];
    const aliases = spec.hostAliases ?? [];
    if (!aliases.some((a) => a.hostnames?.includes('kubernetes.default.svc'))) {
      spec.hostAliases = [...aliases, { ip: server.host, hostnames: names }];
    }
  }
}
