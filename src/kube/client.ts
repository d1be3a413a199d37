// Access to one cluster's API server. client-node provides the kubeconfig, authentication and TLS;
// this layer adds what it lacks: a per-cluster rate limiter with a separate lane for heartbeats (so a
// burst of pod work can never starve a lease renewal), retries on throttling and server hiccups that
// honour Retry-After, request timeouts, and plain-JSON responses of the same shape as watch events.
import type { RequestOptions as HttpsRequestOptions } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiException, HttpMethod, type KubeConfig, RequestContext } from '@kubernetes/client-node';
import PQueue from 'p-queue';
import type { Logger } from 'pino';
import { type Dispatcher, fetch } from 'undici';
import { apiRequestDone, rateLimiterWaiting } from '../metrics/instruments.ts';
import { VERSION } from '../version.ts';
import { isRetriable, retryAfterSecondsOf } from './errors.ts';

/** normal: rate-limited; heartbeat: leases; auth: the kubelet API's TokenReviews and SubjectAccessReviews. */
export type Lane = 'normal' | 'heartbeat' | 'auth';

const DISPATCHER_LIFETIME_MS = 10 * 60_000;

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
  readonly timeoutMs?: number;
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

export class ClusterClient {
  readonly name: string;
  /** Replaced (never mutated) by useCredentials. */
  kubeConfig: KubeConfig;
  readonly server: string;
  private readonly logger: Logger;
  private readonly userAgent: string;
  private readonly lanes: Record<Lane, PQueue>;
  private dispatcher: Dispatcher | undefined;
  private dispatcherCreatedAt = 0;

  constructor(options: ClusterClientOptions) {
    const cluster = options.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error(`cluster ${options.name}: kubeconfig has no current cluster`);
    this.name = options.name;
    this.kubeConfig = options.kubeConfig;
    this.server = cluster.server.replace(/\/+$/, '');
    this.logger = options.logger;
    this.userAgent = options.userAgent ?? `spillway/${VERSION}`;
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

  private dispatcherExpired(): boolean {
    return !this.dispatcher || Date.now() - this.dispatcherCreatedAt > DISPATCHER_LIFETIME_MS;
  }

  /**
   * Headers and a connection pool for a request. client-node builds a new undici Agent for every
   * request it authenticates (a TLS handshake and a lingering socket each time), so the pool is kept
   * here, one per cluster, and renewed every few minutes so rotated certificates are picked up.
   */
  async authenticate(
    url: URL,
    method: HttpMethod = HttpMethod.GET,
  ): Promise<{ headers: Record<string, string>; dispatcher?: Dispatcher }> {
    // Headers through the https-options path, whose agent client-node does cache: cheap per request,
    // and token rotation (token files, exec plugins) still applies.
    const options: HttpsRequestOptions = { headers: {} };
    await this.kubeConfig.applyToHTTPSOptions(options);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      if (value !== undefined) headers[name] = String(value);
    }
    if (this.dispatcherExpired()) {
      const context = new RequestContext(url.toString(), method);
      await this.kubeConfig.applySecurityAuthentication(context);
      const fresh = context.getDispatcher() as Dispatcher | undefined;
      // Concurrent first requests all build one; the first to finish wins, the others drop theirs.
      if (this.dispatcherExpired()) {
        const previous = this.dispatcher;
        this.dispatcher = fresh;
        this.dispatcherCreatedAt = Date.now();
        // Requests may still hold the old pool; close it (after they finish) only a while later.
        if (previous) setTimeout(() => void previous.close().catch(() => {}), 60_000).unref();
      } else {
        void fresh?.close().catch(() => {});
      }
    }
    return { headers, dispatcher: this.dispatcher };
  }

  async request<T>(method: HttpMethod, path: string, options: RequestOptions = {}): Promise<T> {
    const attempts = options.attempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        rateLimiterWaiting(this.name, this.lanes.normal.size);
        return await this.lanes[options.lane ?? 'normal'].add(() => this.once<T>(method, path, options));
      } catch (error) {
        if (attempt >= attempts || !isRetriable(error) || options.signal?.aborted) throw error;
        const backoffMs = Math.min(10_000, 200 * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
        const delayMs = Math.max(backoffMs, (retryAfterSecondsOf(error) ?? 0) * 1000);
        this.logger.debug({ cluster: this.name, method, path, attempt, delayMs }, 'retrying request');
        await sleep(delayMs, undefined, { signal: options.signal });
      }
    }
  }

  private async once<T>(method: HttpMethod, path: string, options: RequestOptions): Promise<T> {
    const url = this.url(path, options.query);
    const auth = await this.authenticate(url, method);
    const headers: Record<string, string> = {
      ...auth.headers,
      accept: 'application/json',
      'user-agent': this.userAgent,
    };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] = options.contentType ?? 'application/json';
    }
    const timeout = AbortSignal.timeout(options.timeoutMs ?? 30_000);
    const started = performance.now();
    const response = await fetch(url, {
      method,
      headers,
      body,
      dispatcher: auth.dispatcher,
      signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    }).catch((error: unknown) => {
      apiRequestDone(this.name, method, undefined, (performance.now() - started) / 1000);
      throw error;
    });
    apiRequestDone(this.name, method, response.status, (performance.now() - started) / 1000);
    const text = await response.text();
    if (!response.ok) {
      const responseHeaders: Record<string, string> = {};
      response.headers.forEach((value, key) => {
        responseHeaders[key] = value;
      });
      throw new ApiException(response.status, `${method} ${path} failed`, text, responseHeaders);
    }
    const isJson = response.headers.get('content-type')?.includes('json');
    return (isJson && text ? JSON.parse(text) : text) as T;
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>(HttpMethod.GET, path, options);
  }

  create<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>(HttpMethod.POST, path, { ...options, body });
  }

  replace<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>(HttpMethod.PUT, path, { ...options, body });
  }

  patch<T>(path: string, body: unknown, type: PatchType, options?: RequestOptions): Promise<T> {
    return this.request<T>(HttpMethod.PATCH, path, {
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
    return this.request<T>(HttpMethod.DELETE, path, {
      ...options,
      body: { apiVersion: 'v1', kind: 'DeleteOptions', ...deleteOptions },
    });
  }

  /**
   * New credentials for the same server (a rotated token, certificate or CA): the next requests and
   * watch connections use them; those in flight finish with the old ones.
   */
  useCredentials(kubeConfig: KubeConfig): void {
    const server = kubeConfig.getCurrentCluster()?.server.replace(/\/+$/, '');
    if (server !== this.server) {
      throw new Error(`cluster ${this.name}: new credentials are for ${server}, not ${this.server}`);
    }
    this.kubeConfig = kubeConfig;
    this.dispatcherCreatedAt = 0;
  }

  /** Stops taking new requests; pending ones are dropped. */
  close(): void {
    this.lanes.normal.clear();
    this.lanes.heartbeat.clear();
    this.lanes.auth.clear();
    void this.dispatcher?.close().catch(() => {});
    this.dispatcher = undefined;
  }
}
