// Who is calling the kubelet API, decided before anything else is looked at: an x509 client
// certificate signed by the host's client CA (the API server's own), or a bearer token the host
// accepts (TokenReview). What an unauthenticated caller can cost is bounded: tokens are remembered by
// their SHA-256 (accepted 2 min, rejected `rejectedTokenCacheSeconds`), concurrent requests with one
// token share one review, every source address has a budget of failed attempts (a token bucket) past
// which its new tokens are refused with 429 without asking the host, and reviews travel on the host
// client's own `auth` lane with a bounded backlog.
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { LRUCache } from 'lru-cache';
import type { ClusterClient } from '../kube/client.ts';
import { messageOf } from '../kube/errors.ts';
import { boundedLru } from '../lru.ts';
import type { HttpRequest } from './http.ts';
import { KubeletError } from './http-errors.ts';
import { authentications, tokenReviews } from './telemetry.ts';

export interface Identity {
  readonly user: string;
  readonly groups: readonly string[];
  readonly uid?: string;
  readonly extra?: Readonly<Record<string, readonly string[]>>;
  /** How the caller proved it: a client certificate or a bearer token. */
  readonly method: 'x509' | 'token';
}

export interface AuthenticationOptions {
  /** Failed authentications a source address may make per second, sustained. */
  readonly failuresPerSecond: number;
  /** Failed authentications a source address may make in a burst. */
  readonly failureBurst: number;
  /** How long a rejected token is answered 401 without asking the host again. */
  readonly rejectedTokenCacheSeconds: number;
  /** Token reviews waiting or in flight, over all sources, past which new ones are refused. */
  readonly maxPendingReviews?: number;
}

const ACCEPTED_TOKEN_TTL_MS = 2 * 60_000;
const DEFAULT_MAX_PENDING_REVIEWS = 256;

interface TokenReviewResponse {
  status?: {
    authenticated?: boolean;
    user?: { username?: string; groups?: string[]; uid?: string; extra?: Record<string, string[]> };
  };
}

function asList(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** A token bucket per source address, for failed authentication attempts. */
export class FailureBudget {
  private readonly perSecond: number;
  private readonly burst: number;
  private readonly buckets = boundedLru<string, { tokens: number; at: number }>({ limit: 16_384 });

  constructor(perSecond: number, burst: number) {
    if (!(perSecond > 0) || !(burst >= 1)) throw new Error('failure budget: rate and burst must be positive');
    this.perSecond = perSecond;
    this.burst = burst;
  }

  private bucket(source: string, now: number): { tokens: number; at: number } {
    const bucket = this.buckets.get(source) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    this.buckets.set(source, bucket);
    return bucket;
  }

  /** Takes one attempt from the source's budget; false when it has none left. */
  take(source: string, now = Date.now()): boolean {
    const bucket = this.bucket(source, now);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Gives an attempt back (it succeeded, so it was no failure). */
  refund(source: string, now = Date.now()): void {
    const bucket = this.bucket(source, now);
    bucket.tokens = Math.min(this.burst, bucket.tokens + 1);
  }

  /** Seconds until the source has an attempt again. */
  retryAfterSeconds(source: string, now = Date.now()): number {
    const bucket = this.bucket(source, now);
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perSecond));
  }
}

export class Authenticator {
  private readonly host: ClusterClient;
  private readonly budget: FailureBudget;
  private readonly maxPending: number;
  private readonly accepted = boundedLru<string, Identity>({ limit: 8192, ttl: ACCEPTED_TOKEN_TTL_MS });
  private readonly rejected: LRUCache<string, true>;
  private readonly inFlight = new Map<string, Promise<Identity | undefined>>();

  constructor(host: ClusterClient, options: AuthenticationOptions) {
    this.host = host;
    this.budget = new FailureBudget(options.failuresPerSecond, options.failureBurst);
    this.maxPending = options.maxPendingReviews ?? DEFAULT_MAX_PENDING_REVIEWS;
    this.rejected = boundedLru<string, true>({
      limit: 16_384,
      ttl: Math.max(1, options.rejectedTokenCacheSeconds) * 1000,
    });
  }

  /** The caller's identity; throws 401 when the request proves none, 429 when its source is over budget. */
  async authenticate(req: HttpRequest): Promise<Identity> {
    const socket = req.socket as TLSSocket;
    // Verified against the host's client CA by the TLS layer (requestCert, rejectUnauthorized: false).
    if (socket.authorized) {
      const subject = socket.getPeerCertificate()?.subject;
      if (subject?.CN) {
        authentications.inc({ method: 'x509', result: 'success' });
        return { user: String(subject.CN), groups: asList(subject.O), method: 'x509' };
      }
    }
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    if (!token) {
      authentications.inc({ method: 'anonymous', result: 'failure' });
      throw new KubeletError(401, 'Unauthorized');
    }
    const identity = await this.reviewToken(token, socket.remoteAddress ?? 'unknown');
    if (!identity) throw new KubeletError(401, 'Unauthorized');
    return identity;
  }

  private async reviewToken(token: string, source: string): Promise<Identity | undefined> {
    // The token itself is never kept: only its hash is.
    const key = createHash('sha256').update(token).digest('base64url');
    const known = this.accepted.get(key);
    if (known) {
      authentications.inc({ method: 'token', result: 'success' });
      return known;
    }
    if (this.rejected.has(key)) {
      authentications.inc({ method: 'token', result: 'failure' });
      return undefined;
    }
    const shared = this.inFlight.get(key);
    if (shared) return shared;
    if (this.inFlight.size >= this.maxPending) {
      authentications.inc({ method: 'token', result: 'overloaded' });
      throw new KubeletError(429, 'too many authentications in progress; retry later', {
        headers: { 'Retry-After': '1' },
      });
    }
    if (!this.budget.take(source)) {
      authentications.inc({ method: 'token', result: 'rate_limited' });
      throw new KubeletError(429, `too many failed authentications from ${source}; retry later`, {
        headers: { 'Retry-After': String(this.budget.retryAfterSeconds(source)) },
      });
    }
    const review = this.review(token, key).then((identity) => {
      if (identity) this.budget.refund(source);
      return identity;
    });
    this.inFlight.set(key, review);
    try {
      return await review;
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async review(token: string, key: string): Promise<Identity | undefined> {
    let response: TokenReviewResponse;
    try {
      response = await this.host.create<TokenReviewResponse>(
        '/apis/authentication.k8s.io/v1/tokenreviews',
        { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
        { lane: 'auth', attempts: 2, timeoutMs: 10_000 },
      );
    } catch (error) {
      tokenReviews.inc({ result: 'error' });
      authentications.inc({ method: 'token', result: 'error' });
      throw new KubeletError(503, `authentication unavailable: ${messageOf(error)}`, { cause: error });
    }
    const user = response.status?.user;
    if (!response.status?.authenticated || !user?.username) {
      tokenReviews.inc({ result: 'rejected' });
      authentications.inc({ method: 'token', result: 'failure' });
      this.rejected.set(key, true);
      return undefined;
    }
    tokenReviews.inc({ result: 'authenticated' });
    authentications.inc({ method: 'token', result: 'success' });
    const identity: Identity = {
      user: user.username,
      groups: user.groups ?? [],
      uid: user.uid,
      extra: user.extra,
      method: 'token',
    };
    this.accepted.set(key, identity);
    return identity;
  }
}
