// The kubelet HTTPS API of every virtual node, on one address and port: logs, exec, attach, run,
// port-forward, resource metrics, stats, pods and healthz. Plain requests come over HTTP/1.1 or HTTP/2
// (ALPN; an API server's kubelet client takes h2, so a thousand `logs -f` share a few connections);
// streaming upgrades (SPDY/3.1 and WebSocket) are HTTP/1.1, taken from the raw 'upgrade' event. Every request
// is authenticated before anything else is looked at (an anonymous caller learns nothing, not even
// which pods exist), then authorized; streaming sessions are admitted against the session limits.
import type { IncomingMessage } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { messageOf } from '../kube/errors.ts';
import { listen } from '../listen.ts';
import { type AuthenticationOptions, Authenticator, type Identity } from './authn.ts';
import { Authorizer, forbidden, subresourcesOf, verbOf } from './authz.ts';
import {
  closeWhenIdle,
  type HttpRequest,
  type HttpResponse,
  type RequestPath,
  requestPath,
  responseGone,
  send,
  sendJson,
} from './http.ts';
import { badRequest, KubeletError, rejectUpgrade, sendError } from './http-errors.ts';
import { serveLogs } from './logs.ts';
import { ResourceMetrics } from './metrics.ts';
import type { MetricsSourceKind } from './metrics-sources.ts';
import { servePortForwardSpdy, servePortForwardWebSocket } from './portforward.ts';
import { commandOptions, type SessionContext } from './remotecommand.ts';
import { serveRemoteCommandSpdy } from './remotecommand-spdy.ts';
import { serveRemoteCommandWebSocket } from './remotecommand-ws.ts';
import type { PodResolver, ResolvedPod } from './resolve.ts';
import { serveRun } from './run.ts';
import { type SessionLimitOptions, SessionLimits } from './sessions.ts';
import type { SessionKind } from './telemetry.ts';
import { PhaseTimer } from './timing.ts';
import { hostClientCA, type ServingCertificate } from './tls.ts';

export interface KubeletServerOptions {
  readonly bindAddress: string;
  readonly port: number;
  readonly host: ClusterClient;
  readonly resolver: PodResolver;
  readonly certificate: ServingCertificate;
  /** PEM bundle verifying the API server's client certificate; default: read from the host cluster. */
  readonly clientCA?: string;
  readonly limits: SessionLimitOptions;
  readonly authentication: AuthenticationOptions;
  /** What one streaming session may buffer for its slower side (see streams/flow.ts). */
  readonly streamBufferBytes: number;
  /** Where resource usage comes from (see metrics-sources.ts). */
  readonly metricsSource: MetricsSourceKind;
  readonly logger: Logger;
}

type Streaming = 'exec' | 'attach' | 'portForward';

/** HTTP/2 streams one client connection may have open at once. */
const MAX_STREAMS_PER_CONNECTION = 250;

const kindOf: Record<Streaming, SessionKind> = { exec: 'exec', attach: 'attach', portForward: 'portforward' };

/** /{group}/{leaf} or /{group}/nodes/{node}/{leaf}, with the node named if any; undefined for other paths. */
function nodeScoped(segments: readonly string[], group: string, leaf: string): { node?: string } | undefined {
  const [first, ...rest] = segments;
  if (first !== group || rest.at(-1) !== leaf) return undefined;
  if (rest.length === 1) return {};
  if (rest.length === 3 && rest[0] === 'nodes') return { node: rest[1] };
  return undefined;
}

/** /exec|/attach/{ns}/{pod}[/{uid}]/{container} and /portForward/{ns}/{pod}[/{uid}]; throws URIError on bad escapes. */
export function parseStreamingPath(
  path: string,
): { kind: Streaming; namespace: string; pod: string; uid?: string; container?: string } | undefined {
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [kind, namespace, pod, ...rest] = parts;
  if (!namespace || !pod) return undefined;
  if (kind === 'exec' || kind === 'attach') {
    if (rest.length === 1) return { kind, namespace, pod, container: rest[0] };
    if (rest.length === 2) return { kind, namespace, pod, uid: rest[0], container: rest[1] };
  }
  if (kind === 'portForward' && rest.length <= 1) return { kind, namespace, pod, uid: rest[0] };
  return undefined;
}

/**
 * Releases a session when its connection closes; false (released already) when it closed while the
 * request was being authorized.
 */
function releaseOnClose(connection: Duplex | HttpResponse, release: () => void): boolean {
  if ('writeHead' in connection ? responseGone(connection) : connection.destroyed) {
    release();
    return false;
  }
  connection.once('close', release);
  return true;
}

/** When each client connection was accepted (for session timings). */
const acceptedAt = new WeakMap<Duplex, number>();

export class KubeletServer {
  private readonly options: KubeletServerOptions;
  private readonly authn: Authenticator;
  private readonly authz: Authorizer;
  private readonly sessions: SessionLimits;
  private readonly metrics: ResourceMetrics;
  private readonly sockets = new Set<Duplex>();
  private readonly warnedRelays = new Set<string>();
  private lastRefusalLog = 0;
  private server: Http2SecureServer | undefined;
  private clientCA = '';

  constructor(options: KubeletServerOptions) {
    if (!(options.port > 0)) throw new Error('kubelet server: port must be positive');
    if (!(options.streamBufferBytes >= 64 * 1024))
      throw new Error('kubelet server: stream buffer under 64 KiB');
    this.options = options;
    this.authn = new Authenticator(options.host, options.authentication);
    this.authz = new Authorizer(options.host);
    this.sessions = new SessionLimits(options.limits);
    this.metrics = new ResourceMetrics({ source: options.metricsSource, logger: options.logger });
  }

  get certificate(): ServingCertificate {
    return this.options.certificate;
  }

  /** Client connections currently open (plain and upgraded). */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** Streaming sessions currently admitted. */
  get openSessions(): number {
    return this.sessions.open;
  }

  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : this.options.port;
  }

  async start(signal: AbortSignal): Promise<void> {
    const { certificate, logger } = this.options;
    this.clientCA = this.options.clientCA ?? (await hostClientCA(this.options.host));
    await certificate.start(signal);
    const server = createSecureServer(
      {
        ...this.secureContextOptions(),
        // The API server presents a client certificate; metrics-server and people present tokens.
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
        // Upgrades (exec, attach, port-forward) and clients without ALPN speak HTTP/1.1.
        allowHTTP1: true,
        // As a kubelet (Go's default): an API server opens another connection past this many.
        settings: { maxConcurrentStreams: MAX_STREAMS_PER_CONNECTION },
      },
      (req, res) => void this.handle(req, res),
    );
    this.server = server;
    server.on(
      'upgrade',
      (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(req, socket, head),
    );
    server.on('connection', (socket: Socket) => {
      acceptedAt.set(socket, performance.now());
      // As node:https does (the HTTP/2 server does not): no Nagle, so a session's small frames (an
      // exec's first message, its output, its status) do not wait for the peer's delayed ACK.
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('session', (session: ServerHttp2Session) => closeWhenIdle(session));
    server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
      if (socket.destroyed) return;
      const status =
        error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    });
    certificate.onChange(() => server.setSecureContext(this.secureContextOptions()));
    if (!this.options.clientCA) {
      // The host's client CA rotates too.
      const timer = setInterval(async () => {
        try {
          const next = await hostClientCA(this.options.host);
          if (next !== this.clientCA) {
            this.clientCA = next;
            server.setSecureContext(this.secureContextOptions());
          }
        } catch (error) {
          logger.info({ err: messageOf(error) }, 'refreshing the host client CA failed');
        }
      }, 5 * 60_000);
      timer.unref();
      signal.addEventListener('abort', () => clearInterval(timer), { once: true });
    }
    await listen(server, this.options.port, this.options.bindAddress);
    signal.addEventListener('abort', () => this.stop(), { once: true });
    logger.info(
      {
        address: this.options.bindAddress,
        port: this.port,
        apiServerUsers: this.options.limits.apiServerUsers,
      },
      'kubelet API serving',
    );
  }

  private secureContextOptions() {
    const { key, cert } = this.options.certificate.current;
    return { key, cert, ca: this.clientCA };
  }

  stop(): void {
    this.server?.close();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Throws 403 unless the identity has the request's permission on every node named. */
  private async authorizeNodes(identity: Identity, req: HttpRequest, path: string, nodes: readonly string[]) {
    const verb = verbOf(req.method, path);
    for (const node of nodes) await this.authz.authorize(identity, verb, subresourcesOf(path), node);
  }

  /**
   * Authorizes a request about one pod on the node the pod is bound to, then resolves its delegate.
   * A pod that is not here is reported (404) only to callers with the permission on some node served
   * here; others get 403, whether the pod exists or not.
   */
  private async authorizePod(
    identity: Identity,
    req: HttpRequest,
    path: string,
    pod: { namespace: string; name: string; uid?: string },
  ): Promise<ResolvedPod> {
    const { resolver } = this.options;
    const verb = verbOf(req.method, path);
    const subresources = subresourcesOf(path);
    const node = resolver.nodeOf(pod.namespace, pod.name);
    if (node) {
      await this.authz.authorize(identity, verb, subresources, node);
      return resolver.resolve(pod.namespace, pod.name, pod.uid);
    }
    for (const name of resolver.nodeNames()) {
      if (await this.authz.allowsAny(identity, verb, subresources, name)) {
        return resolver.resolve(pod.namespace, pod.name, pod.uid);
      }
    }
    throw forbidden(identity, verb, subresources);
  }

  /** Counts a streaming session against the limits; returns the release function. */
  private admit(kind: SessionKind, target: ResolvedPod, identity: Identity, req: HttpRequest): () => void {
    if (identity.method === 'x509' && req.headers['x-forwarded-for'] && !this.sessions.isRelay(identity)) {
      // Requests relayed by an API server carry X-Forwarded-For; one not listed as such is limited
      // as a single user, which would cap every user behind it.
      if (!this.warnedRelays.has(identity.user)) {
        this.warnedRelays.add(identity.user);
        this.options.logger.warn(
          { user: identity.user },
          'a client certificate identity relays requests (X-Forwarded-For) but is not in kubelet.apiServerUsers: its sessions are limited as one client',
        );
      }
    }
    try {
      return this.sessions.admit({ kind, pod: `${target.namespace}/${target.name}`, identity });
    } catch (error) {
      // Through the API server a refused `kubectl logs` shows only "too many requests": say why here,
      // once in a while (a flood of refusals must not flood the log).
      const now = Date.now();
      if (now - this.lastRefusalLog >= 10_000) {
        this.lastRefusalLog = now;
        this.options.logger.warn({ user: identity.user, err: messageOf(error) }, 'streaming session refused');
      }
      throw error;
    }
  }

  /** Every plain request, over HTTP/1.1 or HTTP/2: authenticated first, whatever the path. */
  private async handle(req: HttpRequest, res: HttpResponse): Promise<void> {
    const { logger } = this.options;
    try {
      const identity = await this.authn.authenticate(req);
      await this.route(req, res, identity, requestPath(req.url));
    } catch (error) {
      sendError(res, error, logger);
    }
  }

  private async route(req: HttpRequest, res: HttpResponse, identity: Identity, path: RequestPath) {
    const { resolver, logger } = this.options;
    const [first, ...rest] = path.segments;
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (first === 'healthz' && rest.length === 0 && get) return send(res, 200, 'text/plain', 'ok');
    if (first === 'containerLogs') {
      const [namespace, pod, container] = rest;
      if (!get || rest.length !== 3 || !namespace || !pod || !container) {
        res.setHeader('allow', 'GET');
        return send(res, 405, 'text/plain', '405: Method Not Allowed\n');
      }
      const target = await this.authorizePod(identity, req, path.raw, { namespace, name: pod });
      const release = this.admit('logs', target, identity, req);
      if (!releaseOnClose(res, release)) return;
      return serveLogs(req, res, target, container, path.query);
    }
    if (first === 'run' && req.method === 'POST' && (rest.length === 4 || rest.length === 5)) {
      const [namespace = '', pod = ''] = rest;
      const uid = rest.length === 5 ? rest[2] : undefined;
      const container = rest.at(-1) as string;
      const target = await this.authorizePod(identity, req, path.raw, { namespace, name: pod, uid });
      const release = this.admit('run', target, identity, req);
      if (!releaseOnClose(res, release)) return;
      return serveRun(req, res, this.context(target, logger), container, path.query);
    }
    const metrics = get ? nodeScoped(path.segments, 'metrics', 'resource') : undefined;
    if (metrics) {
      const node = this.singleNode(metrics.node);
      await this.authorizeNodes(identity, req, path.raw, [node]);
      const text = await this.metrics.resourceMetricsText(resolver.remoteOfNode(node));
      return send(res, 200, 'text/plain; version=0.0.4', text);
    }
    const stats = get ? nodeScoped(path.segments, 'stats', 'summary') : undefined;
    if (stats) {
      const node = this.singleNode(stats.node ?? path.query.get('node') ?? undefined);
      await this.authorizeNodes(identity, req, path.raw, [node]);
      return sendJson(res, await this.metrics.summary(resolver.remoteOfNode(node)));
    }
    if (first === 'pods' && rest.length === 0 && get) {
      const nodes = resolver.nodeNames();
      await this.authorizeNodes(identity, req, path.raw, nodes);
      const items = nodes.flatMap((node) => resolver.remoteOfNode(node).pods.hostPods.list());
      return sendJson(res, { kind: 'PodList', apiVersion: 'v1', metadata: {}, items });
    }
    if (first === 'exec' || first === 'attach' || first === 'portForward')
      return send(res, 400, 'text/plain', 'Upgrade request required\n');
    return send(res, 404, 'text/plain', '404 page not found\n');
  }

  private context(target: ResolvedPod, logger: Logger, timer?: PhaseTimer): SessionContext {
    return { target, logger, bufferBytes: this.options.streamBufferBytes, timer };
  }

  /** The node a node-scoped path is about: named, or the only one served. */
  private singleNode(named: string | undefined): string {
    if (named) return named;
    const nodes = this.options.resolver.nodeNames();
    if (nodes.length === 1) return nodes[0] as string;
    throw badRequest(
      `${nodes.length} virtual nodes are served here; name one (e.g. /metrics/nodes/<node>/resource)`,
    );
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const logger = this.options.logger.child({ path: req.url?.split('?')[0] });
    socket.on('error', () => {});
    // From the TCP connection (the TLS handshake included), when debug logging wants the timings.
    const tcp = (socket as TLSSocket & { _parent?: Duplex })._parent ?? socket;
    const timer = logger.isLevelEnabled('debug') ? new PhaseTimer(acceptedAt.get(tcp)) : undefined;
    timer?.mark('request');
    try {
      const identity = await this.authn.authenticate(req);
      timer?.mark('authenticated');
      const url = new URL(req.url ?? '/', 'https://kubelet');
      const route = parseStreamingPath(url.pathname);
      if (!route) throw new KubeletError(404, '404 page not found');
      const target = await this.authorizePod(identity, req, url.pathname, {
        namespace: route.namespace,
        name: route.pod,
        uid: route.uid,
      });
      timer?.mark('authorized');
      const release = this.admit(kindOf[route.kind], target, identity, req);
      if (!releaseOnClose(socket, release)) return;
      const context = this.context(target, logger, timer);
      const websocket = String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
      if (route.kind === 'portForward') {
        if (websocket) await servePortForwardWebSocket(req, socket, head, context, url.searchParams);
        else servePortForwardSpdy(req, socket, head, context);
        return;
      }
      const options = commandOptions(route.kind, route.container as string, url.searchParams);
      if (websocket) await serveRemoteCommandWebSocket(req, socket, head, context, options);
      else await serveRemoteCommandSpdy(req, socket, head, context, options);
    } catch (error) {
      rejectUpgrade(socket, error, logger);
    }
  }
}
