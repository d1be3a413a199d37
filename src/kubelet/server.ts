// The kubelet HTTPS API of every virtual node, on one address and port: logs, exec, attach,
// port-forward, resource metrics, stats, pods and healthz. Plain requests go through express;
// streaming upgrades (SPDY/3.1 and WebSocket) are taken from the raw 'upgrade' event. Every request
// but /healthz is authenticated and authorized first; a client may hold a bounded number of sessions.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { ClusterClient } from '../kube/client.ts';
import { messageOf } from '../kube/errors.ts';
import { listen } from '../listen.ts';
import { type Identity, KubeletAuth, subresourcesOf, verbOf } from './auth.ts';
import { badRequest, KubeletError, rejectUpgrade, sendError } from './http-errors.ts';
import { serveLogs } from './logs.ts';
import { ResourceMetrics } from './metrics.ts';
import type { MetricsSourceKind } from './metrics-sources.ts';
import { servePortForwardSpdy, servePortForwardWebSocket } from './portforward.ts';
import { commandOptions } from './remotecommand.ts';
import { serveRemoteCommandSpdy } from './remotecommand-spdy.ts';
import { serveRemoteCommandWebSocket } from './remotecommand-ws.ts';
import type { PodResolver } from './resolve.ts';
import { hostClientCA, type ServingCertificate } from './tls.ts';

export interface KubeletServerOptions {
  readonly bindAddress: string;
  readonly port: number;
  readonly host: ClusterClient;
  readonly resolver: PodResolver;
  readonly certificate: ServingCertificate;
  /** PEM bundle verifying the API server's client certificate; default: read from the host cluster. */
  readonly clientCA?: string;
  readonly maxSessionsPerClient: number;
  /** Where resource usage comes from (see metrics-sources.ts). */
  readonly metricsSource: MetricsSourceKind;
  readonly logger: Logger;
}

type Streaming = 'exec' | 'attach' | 'portForward';

function param(req: Request, name: string): string | undefined {
  const value = (req.params as Record<string, string | string[] | undefined>)[name];
  return Array.isArray(value) ? value[0] : value;
}

/** /exec|/attach/{ns}/{pod}[/{uid}]/{container} and /portForward/{ns}/{pod}[/{uid}] */
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

export class KubeletServer {
  private readonly options: KubeletServerOptions;
  private readonly auth: KubeletAuth;
  private readonly metrics: ResourceMetrics;
  private readonly sessions = new Map<string, number>();
  private readonly sockets = new Set<Duplex>();
  private server: Server | undefined;
  private clientCA = '';

  constructor(options: KubeletServerOptions) {
    if (!(options.port > 0)) throw new Error('kubelet server: port must be positive');
    this.options = options;
    this.auth = new KubeletAuth(options.host);
    this.metrics = new ResourceMetrics({ source: options.metricsSource, logger: options.logger });
  }

  get certificate(): ServingCertificate {
    return this.options.certificate;
  }

  /** Client connections currently open (plain and upgraded). */
  get openConnections(): number {
    return this.sockets.size;
  }

  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : this.options.port;
  }

  async start(signal: AbortSignal): Promise<void> {
    const { certificate, logger } = this.options;
    this.clientCA = this.options.clientCA ?? (await hostClientCA(this.options.host));
    await certificate.start(signal);
    const server = createServer(
      {
        ...this.secureContextOptions(),
        // The API server presents a client certificate; metrics-server and people present tokens.
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
      },
      this.app(),
    );
    this.server = server;
    server.on(
      'upgrade',
      (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.upgrade(req, socket, head),
    );
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
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
    logger.info({ address: this.options.bindAddress, port: this.port }, 'kubelet API serving');
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

  private async identify(req: IncomingMessage, path: string, node: string | string[]): Promise<Identity> {
    const identity = await this.auth.authenticate(req);
    for (const name of Array.isArray(node) ? node : [node]) {
      await this.auth.authorize(identity, verbOf(req.method), subresourcesOf(path), name);
    }
    return identity;
  }

  /** Counts a streaming session against the client's limit; returns the release function. */
  private admit(identity: Identity): () => void {
    const count = this.sessions.get(identity.user) ?? 0;
    if (count >= this.options.maxSessionsPerClient) {
      throw new KubeletError(
        429,
        `too many concurrent sessions for ${identity.user} (at most ${this.options.maxSessionsPerClient})`,
      );
    }
    this.sessions.set(identity.user, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.sessions.get(identity.user) ?? 1) - 1;
      if (left > 0) this.sessions.set(identity.user, left);
      else this.sessions.delete(identity.user);
    };
  }

  private app(): express.Express {
    const app = express();
    const { resolver, logger } = this.options;
    app.disable('x-powered-by');
    app.get('/healthz', (_req, res) => res.type('text/plain').send('ok'));
    app.get('/containerLogs/:namespace/:pod/:container', async (req: Request, res: Response) => {
      const { namespace = '', pod = '', container = '' } = req.params as Record<string, string | undefined>;
      const target = resolver.resolve(namespace, pod);
      const identity = await this.identify(req, req.path, target.nodeName);
      const release = this.admit(identity);
      res.once('close', release);
      await serveLogs(req, res, target, container, new URLSearchParams(req.url.split('?')[1] ?? ''));
    });
    app.get(['/metrics/resource', '/metrics/nodes/:node/resource'], async (req: Request, res: Response) => {
      const node = this.singleNode(param(req, 'node'));
      await this.identify(req, req.path, node);
      res
        .type('text/plain; version=0.0.4')
        .send(await this.metrics.resourceMetricsText(resolver.remoteOfNode(node)));
    });
    app.get(['/stats/summary', '/stats/nodes/:node/summary'], async (req: Request, res: Response) => {
      const node = this.singleNode(param(req, 'node') ?? (req.query.node as string | undefined));
      await this.identify(req, req.path, node);
      res.json(await this.metrics.summary(resolver.remoteOfNode(node)));
    });
    app.get('/pods', async (req: Request, res: Response) => {
      const nodes = resolver.nodeNames();
      await this.identify(req, req.path, nodes);
      const items = nodes.flatMap((node) => resolver.remoteOfNode(node).pods.hostPods.list());
      res.json({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items });
    });
    app.all(['/exec/*path', '/attach/*path', '/portForward/*path'], (_req, res) => {
      res.status(400).type('text/plain').send('Upgrade request required\n');
    });
    app.use((_req, res) => {
      res.status(404).type('text/plain').send('404 page not found\n');
    });
    app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) =>
      sendError(res as ServerResponse, error, logger),
    );
    return app;
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
    try {
      const url = new URL(req.url ?? '/', 'https://kubelet');
      const route = parseStreamingPath(url.pathname);
      if (!route) throw new KubeletError(404, '404 page not found');
      const target = this.options.resolver.resolve(route.namespace, route.pod, route.uid);
      const identity = await this.identify(req, url.pathname, target.nodeName);
      const release = this.admit(identity);
      socket.once('close', release);
      const websocket = String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';
      if (route.kind === 'portForward') {
        if (websocket) await servePortForwardWebSocket(req, socket, head, target, url.searchParams, logger);
        else servePortForwardSpdy(req, socket, head, target, logger);
        return;
      }
      const options = commandOptions(route.kind, route.container as string, url.searchParams);
      if (websocket) await serveRemoteCommandWebSocket(req, socket, head, target, options, logger);
      else await serveRemoteCommandSpdy(req, socket, head, target, options, logger);
    } catch (error) {
      rejectUpgrade(socket, error, logger);
    }
  }
}
