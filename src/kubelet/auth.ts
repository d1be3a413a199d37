// Who may use the kubelet API, decided as a kubelet decides it: an x509 client certificate signed by
// the host cluster's client CA, or a bearer token the host accepts (TokenReview); then a
// SubjectAccessReview on nodes/<subresource> for the node concerned. Anonymous callers get 401,
// unauthorized ones 403. Results are cached briefly (tokens 2 min; allow 5 min; deny 30 s).
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { LRUCache } from 'lru-cache';
import type { ClusterClient } from '../kube/client.ts';
import { KubeletError } from './http-errors.ts';

export interface Identity {
  readonly user: string;
  readonly groups: readonly string[];
  readonly uid?: string;
  readonly extra?: Record<string, string[]>;
}

export interface Attributes {
  readonly verb: string;
  /** Node subresource: proxy, log, stats, metrics, pods, healthz. */
  readonly subresource: string;
  readonly node: string;
}

const verbs: Record<string, string> = {
  GET: 'get',
  HEAD: 'get',
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

export function verbOf(method: string | undefined): string {
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

function asList(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

export class KubeletAuth {
  private readonly host: ClusterClient;
  private readonly tokens = new LRUCache<string, { identity?: Identity }>({ max: 4096, ttl: 2 * 60_000 });
  private readonly allowed = new LRUCache<string, true>({ max: 8192, ttl: 5 * 60_000 });
  private readonly denied = new LRUCache<string, true>({ max: 8192, ttl: 30_000 });

  constructor(host: ClusterClient) {
    this.host = host;
  }

  /** The caller's identity; throws 401 when the request proves none. */
  async authenticate(req: IncomingMessage): Promise<Identity> {
    const socket = req.socket as TLSSocket;
    // Verified against the host's client CA by the TLS layer (requestCert, rejectUnauthorized: false).
    if (socket.authorized) {
      const subject = socket.getPeerCertificate()?.subject;
      if (subject?.CN) return { user: String(subject.CN), groups: asList(subject.O) };
    }
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (token) {
      const identity = await this.reviewToken(token);
      if (identity) return identity;
    }
    throw new KubeletError(401, 'Unauthorized');
  }

  private async reviewToken(token: string): Promise<Identity | undefined> {
    const cached = this.tokens.get(token);
    if (cached) return cached.identity;
    const review = await this.host.create<{
      status?: {
        authenticated?: boolean;
        user?: { username?: string; groups?: string[]; uid?: string; extra?: Record<string, string[]> };
      };
    }>('/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token },
    });
    const user = review.status?.user;
    const identity =
      review.status?.authenticated && user?.username
        ? { user: user.username, groups: user.groups ?? [], uid: user.uid, extra: user.extra }
        : undefined;
    this.tokens.set(token, { identity });
    return identity;
  }

  /** Throws 403 unless the host's authorizer allows the identity one of the subresources on the node. */
  async authorize(
    identity: Identity,
    verb: string,
    subresources: readonly string[],
    node: string,
  ): Promise<void> {
    for (const subresource of subresources) {
      if (await this.allows(identity, { verb, subresource, node })) return;
    }
    throw new KubeletError(
      403,
      `Forbidden (user=${identity.user}, verb=${verb}, resource=nodes, subresource(s)=[${subresources.join(' ')}])`,
    );
  }

  private async allows(identity: Identity, attributes: Attributes): Promise<boolean> {
    const key = JSON.stringify([identity.user, identity.groups, identity.uid, attributes]);
    if (this.allowed.has(key)) return true;
    if (this.denied.has(key)) return false;
    const review = await this.host.create<{ status?: { allowed?: boolean } }>(
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: identity.user,
          groups: identity.groups,
          uid: identity.uid,
          extra: identity.extra,
          resourceAttributes: {
            verb: attributes.verb,
            resource: 'nodes',
            subresource: attributes.subresource,
            name: attributes.node,
            version: 'v1',
          },
        },
      },
    );
    const allowed = review.status?.allowed === true;
    (allowed ? this.allowed : this.denied).set(key, true);
    return allowed;
  }
}
