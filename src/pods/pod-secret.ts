// The pod's own Secret in the remote, pure: what only the host can give a delegate, in one object per
// pod. It holds the host service-account tokens (mode host, see tokens.ts) and the downward-API files
// of host-only fields (see downward.ts), labelled as this host cluster's, node's and host pod's, named
// `<pod>.pod.<host cluster>.<node>` (see references.reflectedName) so several host clusters sharing a
// remote namespace never collide. It is written before its delegate, kept up to date (tokens refreshed
// at 80 % of their lifetime, files following the host pod's labels and annotations) and deleted once
// the host pod is gone.
import { createHash } from 'node:crypto';
import type { V1Secret } from '@kubernetes/client-node';
import { LABEL_HOST_POD_UID, ownershipLabels } from '../ownership.ts';
import { type ReflectionScope, reflectedName } from './references.ts';
import type { TokenSource } from './tokens.ts';

export const LABEL_POD_SECRET = 'spillway.dev/pod-secret';
/** JSON: token key → {issuedAt, expiresAt (ms since epoch), audience, expirationSeconds}. */
export const ANNOTATION_TOKENS = 'spillway.dev/tokens';
export const ANNOTATION_DOWNWARD_HASH = 'spillway.dev/downward-hash';

export function podSecretName(podName: string, scope: ReflectionScope): string {
  return reflectedName(`${podName}.pod`, scope);
}

/** What the pod's Secret must hold. */
export interface PodSecretSpec {
  readonly namespace: string;
  readonly name: string;
  /** The host ServiceAccount tokens are requested for. */
  readonly serviceAccount: string;
  readonly tokens: readonly TokenSource[];
  readonly downward: Readonly<Record<string, string>>;
  readonly downwardHash: string;
}

export interface TokenState {
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly audience?: string;
  readonly expirationSeconds: number;
}

/** The pod's Secret as the cache (or our last write) shows it: metadata only, never the tokens. */
export interface PodSecretView {
  readonly namespace: string;
  readonly name: string;
  readonly uid?: string;
  readonly resourceVersion: string;
  readonly hostPodUid: string;
  readonly tokens: Readonly<Record<string, TokenState>>;
  readonly downwardHash: string;
}

/** A write of the pod's Secret: tokens to request, downward files to set, with the precondition. */
export interface PodSecretWrite {
  readonly spec: PodSecretSpec;
  /** Token keys to request now (the others keep their current value). */
  readonly issue: readonly string[];
  /** Whether the downward files must be (re)written. */
  readonly downwardChanged: boolean;
  /** The Secret being updated (resourceVersion precondition); undefined: create it. */
  readonly current?: PodSecretView;
}

export function hashOf(data: Readonly<Record<string, string>>): string {
  const canonical = JSON.stringify(
    Object.keys(data)
      .sort()
      .map((k) => [k, data[k]]),
  );
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

export function podSecretLabels(scope: ReflectionScope, hostPodUid: string): Record<string, string> {
  return {
    ...ownershipLabels(scope.hostClusterName, scope.nodeName),
    [LABEL_HOST_POD_UID]: hostPodUid,
    [LABEL_POD_SECRET]: 'true',
  };
}

/** What the cache keeps of a pod's Secret: no data (tokens stay out of Spillway's memory). */
export function trimPodSecret(secret: V1Secret): V1Secret {
  const { managedFields: _managed, ...metadata } = secret.metadata ?? {};
  return { metadata };
}

export function viewOf(secret: V1Secret): PodSecretView {
  let tokens: Record<string, TokenState> = {};
  try {
    tokens = JSON.parse(secret.metadata?.annotations?.[ANNOTATION_TOKENS] ?? '{}') as Record<
      string,
      TokenState
    >;
  } catch {
    // An annotation edited by hand: every token is requested again.
  }
  return {
    namespace: secret.metadata?.namespace ?? '',
    name: secret.metadata?.name ?? '',
    uid: secret.metadata?.uid,
    resourceVersion: secret.metadata?.resourceVersion ?? '',
    hostPodUid: secret.metadata?.labels?.[LABEL_HOST_POD_UID] ?? '',
    tokens,
    downwardHash: secret.metadata?.annotations?.[ANNOTATION_DOWNWARD_HASH] ?? '',
  };
}

/** When a token is due again: at 80 % of its lifetime, or once it is `maxAgeMs` old. */
export function refreshAt(state: TokenState, maxAgeMs: number): number {
  return state.issuedAt + Math.min(0.8 * (state.expiresAt - state.issuedAt), maxAgeMs);
}

export interface PodSecretPlan {
  /** The write to make, if any. */
  readonly write?: PodSecretWrite;
  /** The Secret belongs to an earlier pod of this name: it goes first. */
  readonly stale?: PodSecretView;
  /** When the next token is due (ms since epoch), if any token is kept. */
  readonly nextRefreshAt?: number;
}

/** What to do about the pod's Secret, from what it must hold and what it holds. */
export function planPodSecret(
  hostUid: string,
  desired: PodSecretSpec,
  current: PodSecretView | undefined,
  { now, maxTokenAgeMs }: { now: number; maxTokenAgeMs: number },
): PodSecretPlan {
  if (current && current.hostPodUid !== hostUid) return { stale: current };
  const issue: string[] = [];
  let nextRefreshAt: number | undefined;
  for (const source of desired.tokens) {
    const state = current?.tokens[source.key];
    const same =
      state !== undefined &&
      (state.audience ?? '') === (source.audience ?? '') &&
      state.expirationSeconds === source.expirationSeconds;
    const due = same ? refreshAt(state, maxTokenAgeMs) : now;
    if (due <= now) issue.push(source.key);
    else nextRefreshAt = Math.min(nextRefreshAt ?? due, due);
  }
  const downwardChanged = current?.downwardHash !== desired.downwardHash;
  const stray =
    current !== undefined &&
    Object.keys(current.tokens).some((k) => !desired.tokens.some((t) => t.key === k));
  if (!current || issue.length > 0 || downwardChanged || stray) {
    return {
      write: { spec: desired, issue, downwardChanged: downwardChanged || !current, current },
      nextRefreshAt,
    };
  }
  return { nextRefreshAt };
}
