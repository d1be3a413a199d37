// What a caller may do on the kubelet API, decided as a kubelet decides it (a SubjectAccessReview on
// nodes/<subresource> for the node concerned) with one deliberate difference: exec, attach, run and
// portForward need `create` whatever the HTTP method. A WebSocket upgrade is a GET, which a kubelet
// maps to `get`, so `get nodes/proxy` (meant for reading) would run commands (kubernetes#136550).
// Decisions are cached (allowed 5 min, denied 30 s) under a hash of the whole review input, extra
// included, and concurrent identical reviews share one request.
import { createHash } from 'node:crypto';
import type { ClusterClient } from '../kube/client.ts';
import { messageOf } from '../kube/errors.ts';
import { boundedLru } from '../lru.ts';
import type { Identity } from './authn.ts';
import { KubeletError } from './http-errors.ts';
import { accessReviews } from './telemetry.ts';

const verbs: Record<string, string> = {
  GET: 'get',
  HEAD: 'get',
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

const COMMAND_PATHS = /^\/(exec|attach|run|portForward)(\/|$)/;

/** The verb of a request: `create` for anything that runs a command or opens a port, else by method. */
export function verbOf(method: string | undefined, path: string): string {
  if (COMMAND_PATHS.test(path)) return 'create';
  return verbs[method ?? 'GET'] ?? 'get';
}

/**
 * The node subresources a request needs, in the order they are tried (allowed if any passes): the
 * kubelet's mapping, with fine-grained pods/healthz first as KubeletFineGrainedAuthz does.
 */
export function subresourcesOf(path: string): string[] {
  if (path.startsWith('/stats')) return ['stats'];
  if (path.startsWith('/metrics')) return ['metrics'];
  if (path.startsWith('/logs')) return ['log'];
  if (path === '/pods' || path.startsWith('/pods/')) return ['pods', 'proxy'];
  if (path.startsWith('/healthz')) return ['healthz', 'proxy'];
  return ['proxy'];
}

interface SubjectAccessReviewSpec {
  readonly user: string;
  readonly groups: readonly string[];
  readonly uid?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
  readonly resourceAttributes: {
    readonly verb: string;
    readonly resource: 'nodes';
    readonly subresource: string;
    readonly name: string;
    readonly version: 'v1';
  };
}

/** The cache key of a review: every field of its input, with `extra`'s keys in a stable order. */
export function reviewKey(spec: SubjectAccessReviewSpec): string {
  const extra = spec.extra
    ? Object.fromEntries(Object.entries(spec.extra).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : undefined;
  const canonical = JSON.stringify([
    spec.user,
    spec.groups,
    spec.uid ?? null,
    extra ?? null,
    spec.resourceAttributes.verb,
    spec.resourceAttributes.resource,
    spec.resourceAttributes.subresource,
    spec.resourceAttributes.name,
    spec.resourceAttributes.version,
  ]);
  return createHash('sha256').update(canonical).digest('base64url');
}

export function forbidden(identity: Identity, verb: string, subresources: readonly string[]): KubeletError {
  return new KubeletError(
    403,
    `Forbidden (user=${identity.user}, verb=${verb}, resource=nodes, subresource(s)=[${subresources.join(' ')}])`,
  );
}

export class Authorizer {
  private readonly host: ClusterClient;
  private readonly allowed = boundedLru<string, true>({ limit: 8192, ttl: 5 * 60_000 });
  private readonly denied = boundedLru<string, true>({ limit: 8192, ttl: 30_000 });
  private readonly inFlight = new Map<string, Promise<boolean>>();

  constructor(host: ClusterClient) {
    this.host = host;
  }

  /** Throws 403 unless the host's authorizer allows the identity one of the subresources on the node. */
  async authorize(
    identity: Identity,
    verb: string,
    subresources: readonly string[],
    node: string,
  ): Promise<void> {
    if (!(await this.allowsAny(identity, verb, subresources, node)))
      throw forbidden(identity, verb, subresources);
  }

  /** Whether one of the subresources is allowed on the node. */
  async allowsAny(
    identity: Identity,
    verb: string,
    subresources: readonly string[],
    node: string,
  ): Promise<boolean> {
    for (const subresource of subresources) {
      if (await this.allows(identity, verb, subresource, node)) return true;
    }
    return false;
  }

  private async allows(
    identity: Identity,
    verb: string,
    subresource: string,
    node: string,
  ): Promise<boolean> {
    const spec: SubjectAccessReviewSpec = {
      user: identity.user,
      groups: identity.groups,
      uid: identity.uid,
      extra: identity.extra,
      resourceAttributes: { verb, resource: 'nodes', subresource, name: node, version: 'v1' },
    };
    const key = reviewKey(spec);
    if (this.allowed.has(key)) return true;
    if (this.denied.has(key)) return false;
    const shared = this.inFlight.get(key);
    if (shared) return shared;
    const review = this.review(spec).then((allowed) => {
      (allowed ? this.allowed : this.denied).set(key, true);
      return allowed;
    });
    this.inFlight.set(key, review);
    try {
      return await review;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async review(spec: SubjectAccessReviewSpec): Promise<boolean> {
    try {
      const review = await this.host.create<{ status?: { allowed?: boolean } }>(
        '/apis/authorization.k8s.io/v1/subjectaccessreviews',
        { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec },
        { lane: 'auth', attempts: 2, timeoutMs: 10_000 },
      );
      const allowed = review.status?.allowed === true;
      accessReviews.inc({ result: allowed ? 'allowed' : 'denied' });
      return allowed;
    } catch (error) {
      accessReviews.inc({ result: 'error' });
      throw new KubeletError(503, `authorization unavailable: ${messageOf(error)}`, { cause: error });
    }
  }
}
