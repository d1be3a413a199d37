// Access to one cluster's API server over node:https (lighter than fetch in memory and CPU per
// request), with what a controller needs: a per-cluster rate limiter with a separate lane for
// heartbeats (so a burst of pod work can never starve a lease renewal), connection pools per lane (a
// renewal never waits for a socket either), retries on throttling and server hiccups that honour
// Retry-After, inactivity timeouts, credentials fetched anew on 401, and plain-JSON responses of the
// same shape as watch events.
import type { Agent as HttpAgent, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSecureContext, type TLSSocket } from 'node:tls';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { apiRequestDone, rateLimiterWaiting } from '../metrics/instruments.ts';
import { VERSION } from '../version.ts';
import type { KubeConfig } from './credentials.ts';
import { ApiError, isRetriable, isUnauthorized, retryAfterSecondsOf } from './errors.ts';
import { Http2Pool } from './http2.ts';
import { SpareSockets, tlsTarget } from './spare-sockets.ts';

/** normal: rate-limited; heartbeat: leases; auth: the kubelet API's TokenReviews and SubjectAccessReviews. */
export type Lane = 'normal' | 'heartbeat' | 'auth';
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Connections are renewed this often, so rotated certificates and CA bundles are picked up. */
const AGENT_LIFETIME_MS = 10 * 60_000;
/** A replaced pool is destroyed after this, longer than any watch lasts (at most 10 minutes). */
const RETIRED_AGENT_MS = 11 * 60_000;
/** Sockets per pool for ordinary requests: enough for hundreds of requests per second on a LAN. */
const MAX_SOCKETS = 64;

export type PatchType = 'merge' | 'strategic' | 'json' | 'apply';

const patchContentTypes: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

export interface RequestOptions {
  readonly query?: Record<string, string | number | boolean | undefined>;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly lane?: Lane;
  /** Attempts in all, including the first (default 5; 1 disables retries). */
  readonly attempts?: number;
  /** The request fails when the server sends nothing for this long (default 30 s). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface StreamOptions {
  readonly query?: RequestOptions['query'];
  readonly accept?: string;
  /** The stream is broken off when nothing arrives for this long (default: never). */
  readonly idleTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface ClusterClientOptions {
  /** A name for logs and metrics: `host` or the remote's name. */
  readonly name: string;
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  /** Sustained requests per second on the normal lane. */
  readonly qps?: number;
  /** Requests that may be in flight at once on the normal lane. */
  readonly burst?: number;
  readonly userAgent?: string;
}

/** Spillway's User-Agent, distinct per cluster it talks to (API server logs and audit tell them apart). */
export function spillwayUserAgent(hostClusterName: string, cluster: string): string {
  return `spillway/${VERSION} (${process.platform}/${process.arch}) host-cluster/${hostClusterName} cluster/${cluster}`;
}

/** Connection pools: one per lane, and one for streams (watches, logs), so none waits for another's sockets. */
type Pool = Lane | 'stream';

/**
 * node:http, for the rare server on plain http (allowed only with insecure-skip-tls-verify). Required,
 * not imported: an ES import of node:http evaluates all its exports, WebSocket among them, which loads
 * Node's bundled undici, http2 and worker_threads (several MiB resident) for nothing.
 */
const plainHttp = () => createRequire(import.meta.url)('node:http') as typeof import('node:http');
type Agent = HttpsAgent | HttpAgent;

/** One generation of connections (see pool()). */
interface Connections {
  readonly agents: Record<Pool, Agent>;
  /**
   * Followed logs, which may stay open for hours: over HTTP/2 when the server speaks it, else over
   * HTTP/1.1 on an unbounded pool of their own (their number is bounded by the kubelet API's session
   * limits), so that they never take the sockets watches need. Neither is destroyed when its
   * generation retires: the streams on it end on their own.
   */
  readonly follow: { readonly http2?: Http2Pool; readonly agent: Agent };
  /** TLS connections dialled ahead of time for upgrades (exec, attach, port-forward); https only. */
  readonly upgrades?: SpareSockets;
}

export class ClusterClient {
  readonly name: string;
  /** Replaced (never mutated) by useCredentials. */
  kubeConfig: KubeConfig;
  readonly server: string;
  private readonly logger: Logger;
  private readonly userAgent: string;
  private readonly lanes: Record<Lane, PQueue>;
  private readonly secure: boolean;
  private agents: Promise<Connections> | undefined;
  private agentsExpireAt = 0;
  private closed = false;

  constructor(options: ClusterClientOptions) {
    const cluster = options.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error(`cluster ${options.name}: kubeconfig has no current cluster`);
    this.name = options.name;
    this.kubeConfig = options.kubeConfig;
    this.server = cluster.server.replace(/\/+$/, '');
    this.secure = this.server.startsWith('https:');
    this.logger = options.logger;
    this.userAgent = options.userAgent ?? `spillway/${VERSION} cluster/${options.name}`;
    const qps = options.qps ?? 50;
    this.lanes = {
      normal: new PQueue({ concurrency: options.burst ?? 100, intervalCap: qps, interval: 1000 }),
      heartbeat: new PQueue({ concurrency: 8 }),
      // Callers of the kubelet API neither wait behind pod work nor, however many, delay it.
      auth: new PQueue({ concurrency: 8 }),
    };
  }

  /** Requests waiting for the rate limiter on the normal lane. */
  get pending(): number {
    return this.lanes.normal.size;
  }

  url(path: string, query?: RequestOptions['query']): URL {
    const url = new URL(this.server + path);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** One connection pool per use, renewed every few minutes (and before exec certificates expire). */
  private pool(pool: Pool): Promise<Agent> {
    return this.connections().then(({ agents }) => agents[pool]);
  }

  private connections(): Promise<Connections> {
    const now = Date.now();
    if (!this.agents || now >= this.agentsExpireAt) {
      const previous = this.agents;
      this.agentsExpireAt = Math.min(now + AGENT_LIFETIME_MS, this.kubeConfig.tlsValidUntil() - 30_000);
      this.agents = this.makeAgents();
      // A failure (an unreadable certificate file) is tried again on the next request.
      this.agents.catch(() => {
        this.agentsExpireAt = 0;
      });
      if (previous) {
        // Spares made with the old credentials are not handed out any more.
        void previous.then(
          ({ upgrades }) => upgrades?.close(),
          () => {},
        );
        setTimeout(() => {
          void previous.then(
            ({ agents, follow }) => {
              for (const agent of Object.values(agents)) agent.destroy();
              follow.http2?.close();
            },
            () => {},
          );
        }, RETIRED_AGENT_MS).unref();
      }
    }
    return this.agents;
  }

  private async makeAgents(): Promise<Connections> {
    const { ca, cert, key, ...verification } = this.secure
      ? await this.kubeConfig.tlsOptions()
      : { ca: undefined, cert: undefined, key: undefined };
    // One TLS context for every connection: built per connection, it costs a CA and key parse each time.
    const secureContext = this.secure ? createSecureContext({ ca, cert, key }) : undefined;
    const make = (maxSockets: number) => {
      // Idle sockets are all kept (until 60 s of idleness): a burst must not pay TLS handshakes again.
      const options = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: 60_000 };
      return this.secure
        ? new HttpsAgent({ ...options, ...verification, secureContext })
        : new (plainHttp().Agent)(options);
    };
    return {
      agents: { normal: make(MAX_SOCKETS), heartbeat: make(8), auth: make(8), stream: make(256) },
      follow: {
        http2: secureContext
          ? new Http2Pool({ server: this.server, secureContext, verification })
          : undefined,
        agent: make(Number.POSITIVE_INFINITY),
      },
      upgrades: secureContext
        ? new SpareSockets({
            connect: {
              secureContext,
              ...verification,
              ...tlsTarget(this.server, (verification as { servername?: string }).servername),
            },
          })
        : undefined,
    };
  }

  private async headers(accept: string): Promise<Record<string, string>> {
    const authorization = await this.kubeConfig.authorization();
    return {
      accept,
      'user-agent': this.userAgent,
      ...(authorization ? { authorization } : {}),
    };
  }

  async request<T>(method: HttpMethod, path: string, options: RequestOptions = {}): Promise<T> {
    const attempts = options.attempts ?? 5;
    let refreshedCredentials = false;
    for (let attempt = 1; ; attempt++) {
      try {
        rateLimiterWaiting(this.name, this.lanes.normal.size);
        return await this.lanes[options.lane ?? 'normal'].add(() => this.once<T>(method, path, options));
      } catch (error) {
        if (isUnauthorized(error) && !refreshedCredentials && !options.signal?.aborted) {
          // A rotated token or an expired plugin credential: fetch it again, once.
          refreshedCredentials = true;
          this.kubeConfig.invalidate();
          attempt--;
          continue;
        }
        if (attempt >= attempts || !isRetriable(error) || options.signal?.aborted || this.closed) throw error;
        const backoffMs = Math.min(10_000, 200 * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
        const delayMs = Math.max(backoffMs, (retryAfterSecondsOf(error) ?? 0) * 1000);
        this.logger.debug({ cluster: this.name, method, path, attempt, delayMs }, 'retrying request');
        await sleep(delayMs, undefined, { signal: options.signal });
      }
    }
  }

  private async once<T>(method: HttpMethod, path: string, options: RequestOptions): Promise<T> {
    const url = this.url(path, options.query);
    const headers = await this.headers('application/json');
    let body: Buffer | undefined;
    if (options.body !== undefined) {
      body = Buffer.from(JSON.stringify(options.body));
      headers['content-type'] = options.contentType ?? 'application/json';
      headers['content-length'] = String(body.length);
    }
    const agent = await this.pool(options.lane ?? 'normal');
    const timeoutMs = options.timeoutMs ?? 30_000;
    const started = performance.now();
    let response: IncomingMessage;
    let text: string;
    try {
      response = await this.send(url, method, headers, agent, timeoutMs, options.signal, body);
      text = await readBody(response);
    } catch (error) {
      apiRequestDone(this.name, method, undefined, (performance.now() - started) / 1000);
      throw error;
    }
    apiRequestDone(this.name, method, response.statusCode, (performance.now() - started) / 1000);
    if (!isSuccess(response)) throw apiError(method, path, response, text);
    const isJson = response.headers['content-type']?.includes('json');
    return (isJson && text ? JSON.parse(text) : text) as T;
  }

  /**
   * A streaming GET (watches, logs): resolves with the response once its headers say 2xx, rejects
   * with an ApiError carrying the server's Status otherwise. Not rate limited, like client-go's watches.
   */
  async stream(path: string, options: StreamOptions = {}): Promise<IncomingMessage> {
    const url = this.url(path, options.query);
    const headers = await this.headers(options.accept ?? 'application/json');
    const agent = await this.pool('stream');
    const response = await this.send(url, 'GET', headers, agent, options.idleTimeoutMs ?? 0, options.signal);
    if (isSuccess(response)) return response;
    throw apiError('GET', path, response, await readBody(response, 64 * 1024));
  }

  /**
   * A streaming GET that may stay open for hours (a followed log), with no idle timeout: over HTTP/2
   * when the server negotiates it (many share a connection; a slow reader holds back only its own
   * stream), otherwise like {@link stream} on a pool of its own. Rejects with an ApiError otherwise.
   */
  async follow(path: string, options: StreamOptions = {}): Promise<Readable> {
    const url = this.url(path, options.query);
    const headers = await this.headers(options.accept ?? 'application/json');
    const { follow } = await this.connections();
    const response = await follow.http2?.get(url.pathname + url.search, headers, options.signal);
    if (!response) {
      const answer = await this.send(url, 'GET', headers, follow.agent, 0, options.signal);
      if (isSuccess(answer)) return answer;
      throw apiError('GET', path, answer, await readBody(answer, 64 * 1024));
    }
    if (response.status >= 200 && response.status < 300) return response.body;
    throw apiError(
      'GET',
      path,
      { statusCode: response.status, headers: response.headers },
      await readBody(response.body, 64 * 1024),
    );
  }

  /**
   * A TLS connection to the server for one upgrade (exec, attach, port-forward; HTTP/1.1), taken from
   * those dialled ahead of time when one is ready. The caller owns it. For https servers only.
   */
  async upgradeSocket(): Promise<TLSSocket> {
    const { upgrades } = await this.connections();
    if (!upgrades) throw new Error(`cluster ${this.name}: upgrade connections need https`);
    return upgrades.take();
  }

  /** Connections open for follows over HTTP/2, and spare ones for upgrades (for tests and metrics). */
  async connectionCounts(): Promise<{ http2Follows: number; spareUpgrades: number }> {
    const { follow, upgrades } = await this.connections();
    return { http2Follows: follow.http2?.connections ?? 0, spareUpgrades: upgrades?.size ?? 0 };
  }

  private send(
    url: URL,
    method: HttpMethod,
    headers: Record<string, string>,
    agent: Agent,
    idleTimeoutMs: number,
    signal: AbortSignal | undefined,
    body?: Buffer,
  ): Promise<IncomingMessage> {
    const request = this.secure ? httpsRequest : plainHttp().request;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      // Not https.request's own `signal`: an abort after the response has ended must not destroy the
      // socket, which is back in the pool and may carry someone else's request by then.
      let answer: IncomingMessage | undefined;
      const onAbort = () => {
        if (!answer?.complete) req.destroy(abortError(signal as AbortSignal));
      };
      const detach = () => signal?.removeEventListener('abort', onAbort);
      const req = request(url, { method, headers, agent }, (response) => {
        answer = response;
        response.once('end', detach);
        response.once('close', detach);
        resolve(response);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (idleTimeoutMs > 0) {
        req.setTimeout(idleTimeoutMs, () => {
          req.destroy(
            Object.assign(new Error(`${method} ${url.pathname}: no answer for ${idleTimeoutMs} ms`), {
              name: 'TimeoutError',
              code: 'ETIMEDOUT',
            }),
          );
        });
      }
      req.on('error', (error) => {
        detach();
        reject(error);
      });
      req.end(body);
    });
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, options);
  }

  create<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, { ...options, body });
  }

  replace<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('PUT', path, { ...options, body });
  }

  patch<T>(path: string, body: unknown, type: PatchType, options?: RequestOptions): Promise<T> {
    return this.request<T>('PATCH', path, {
      ...options,
      body,
      contentType: patchContentTypes[type],
    });
  }

  /** Deletes with optional preconditions, so only the expected object (by UID/resourceVersion) is removed. */
  delete<T>(
    path: string,
    deleteOptions: {
      preconditions?: { uid?: string; resourceVersion?: string };
      gracePeriodSeconds?: number;
    } = {},
    options?: RequestOptions,
  ): Promise<T> {
    return this.request<T>('DELETE', path, {
      ...options,
      body: { apiVersion: 'v1', kind: 'DeleteOptions', ...deleteOptions },
    });
  }

  /**
   * New credentials for the same server (a rotated token, certificate or CA): the next requests and
   * watch connections use them (on new connections); those in flight finish with the old ones.
   */
  useCredentials(kubeConfig: KubeConfig): void {
    const server = kubeConfig.getCurrentCluster()?.server.replace(/\/+$/, '');
    if (server !== this.server) {
      throw new Error(`cluster ${this.name}: new credentials are for ${server}, not ${this.server}`);
    }
    this.kubeConfig = kubeConfig;
    this.agentsExpireAt = 0;
  }

  /** Stops taking new requests; pending ones are dropped, connections closed. */
  close(): void {
    this.closed = true;
    this.lanes.normal.clear();
    this.lanes.heartbeat.clear();
    this.lanes.auth.clear();
    const agents = this.agents;
    this.agents = undefined;
    void agents?.then(
      ({ agents, follow, upgrades }) => {
        for (const agent of Object.values(agents)) agent.destroy();
        follow.agent.destroy();
        follow.http2?.destroy();
        upgrades?.close();
      },
      () => {},
    );
  }
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('request aborted', { cause: signal.reason }), { name: 'AbortError' });
}

function isSuccess(response: IncomingMessage): boolean {
  const status = response.statusCode ?? 0;
  return status >= 200 && status < 300;
}

/** The whole body as text (at most `limit` bytes are kept; the rest is read and dropped). */
function readBody(response: Readable, limit = Number.POSITIVE_INFINITY): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    response.on('data', (chunk: Buffer) => {
      if (length < limit) chunks.push(chunk);
      length += chunk.length;
    });
    response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    response.on('error', reject);
    response.on('aborted', () =>
      reject(Object.assign(new Error('response aborted by the server'), { code: 'ECONNRESET' })),
    );
  });
}

function apiError(
  method: string,
  path: string,
  response: { statusCode?: number; headers: IncomingHttpHeaders },
  body: string,
): ApiError {
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(response.headers)) {
    // HTTP/2's pseudo-headers (:status) are not headers.
    if (value !== undefined && !key.startsWith(':'))
      headers[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return new ApiError(response.statusCode ?? 0, `${method} ${path} failed`, body, headers);
}
