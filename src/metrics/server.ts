// Spillway's own metrics endpoint: plain HTTP, GET /metrics in the Prometheus text format, plus
// /healthz (the process answers) and /readyz (started: connected to the host, remotes registered),
// which the Deployment's probes use.
import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { messageOf } from '../kube/errors.ts';
import { listen } from '../listen.ts';
import { metricsRegistry } from './registry.ts';

export interface MetricsServerOptions {
  readonly bindAddress: string;
  readonly port: number;
  readonly ready: () => boolean;
  readonly logger: Logger;
}

export class MetricsServer {
  private readonly options: MetricsServerOptions;
  private server: Server | undefined;

  constructor(options: MetricsServerOptions) {
    if (!(options.port >= 0 && options.port < 65536)) throw new Error('metrics server: port must be 0-65535');
    this.options = options;
  }

  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address ? address.port : this.options.port;
  }

  async start(signal: AbortSignal): Promise<void> {
    const server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://metrics').pathname;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        metricsRegistry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': metricsRegistry.contentType }).end(text),
          (error: unknown) => {
            this.options.logger.error({ err: messageOf(error) }, 'collecting metrics failed');
            res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
          },
        );
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const ready = this.options.ready();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ok\n' : 'starting\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
    // Scrapers are trusted less than the API server: slow or idle clients do not hold sockets for long.
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    await listen(server, this.options.port, this.options.bindAddress);
    this.server = server;
    signal.addEventListener('abort', () => server.close(), { once: true });
    this.options.logger.info(
      { address: this.options.bindAddress, port: this.port },
      'serving metrics on /metrics',
    );
  }
}
