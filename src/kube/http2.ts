// HTTP/2 to an API server for streams that stay open for hours (a followed log): many share a few TLS
// connections instead of holding one each (a TLS connection costs about 27 KiB resident; a stream on
// a shared one, a few). Each session takes at most the streams the server allows
// (SETTINGS_MAX_CONCURRENT_STREAMS), and never more than `maxStreamsPerSession`; a new session opens
// when every one is full. Flow control is per stream: a body read slowly holds back only its own
// stream (the server stops at the stream's window), never the others on the connection.
//
// A server that does not negotiate h2 by ALPN is remembered as such: the caller uses HTTP/1.1.
import type {
  ClientHttp2Session,
  ClientHttp2Stream,
  IncomingHttpHeaders,
  OutgoingHttpHeaders,
} from 'node:http2';
import { createRequire } from 'node:module';
import { type ConnectionOptions, type SecureContext, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { tlsTarget } from './spare-sockets.ts';

/** Required when first used, not imported: most processes never load node:http2. */
const http2 = () => createRequire(import.meta.url)('node:http2') as typeof import('node:http2');

export interface Http2PoolOptions {
  /** https://host:port of the API server. */
  readonly server: string;
  readonly secureContext: SecureContext;
  /** rejectUnauthorized, servername: how the server's certificate is checked. */
  readonly verification: Pick<ConnectionOptions, 'rejectUnauthorized' | 'servername'>;
  /** At most this many streams on one connection, whatever the server allows (default 250). */
  readonly maxStreamsPerSession?: number;
  /** A connection without streams is closed after this long (default 60 s). */
  readonly idleMs?: number;
}

export interface Http2Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body, read as fast as it is consumed. */
  readonly body: ClientHttp2Stream;
}

interface PooledSession {
  readonly session: ClientHttp2Session;
  active: number;
  idle?: NodeJS.Timeout;
}

/** What the server allows on a connection before its SETTINGS arrive (RFC 9113 recommends ≥ 100). */
const ASSUMED_MAX_STREAMS = 100;

export class Http2Pool {
  private readonly options: Http2PoolOptions;
  private readonly sessions = new Set<PooledSession>();
  private connecting: Promise<PooledSession | undefined> | undefined;
  private unsupported = false;
  private closed = false;

  constructor(options: Http2PoolOptions) {
    if (!options.server.startsWith('https:')) throw new Error('HTTP/2 pool: the server must be https');
    this.options = options;
  }

  /** Connections open (for tests and metrics). */
  get connections(): number {
    return this.sessions.size;
  }

  /**
   * A GET on a pooled connection; resolves once the response headers are in. Undefined when the
   * server does not speak HTTP/2 (the caller falls back to HTTP/1.1).
   */
  async get(
    path: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<Http2Response | undefined> {
    // The stream's slot is taken in acquire(), before any await: concurrent callers see it taken.
    const pooled = await this.acquire();
    if (!pooled) return undefined;
    let stream: ClientHttp2Stream;
    try {
      signal?.throwIfAborted();
      const request: OutgoingHttpHeaders = { ':method': 'GET', ':path': path, ...headers };
      stream = pooled.session.request(request, { endStream: true, ...(signal ? { signal } : {}) });
    } catch (error) {
      this.release(pooled);
      throw error;
    }
    stream.once('close', () => this.release(pooled));
    // An error before the consumer listens is kept in the stream's state (the consumer sees it).
    stream.on('error', () => {});
    return new Promise((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      stream.once('error', onError);
      stream.once('response', (responseHeaders) => {
        stream.off('error', onError);
        resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body: stream });
      });
    });
  }

  /** No new streams; open ones finish on their connections, which then close. */
  close(): void {
    this.closed = true;
    for (const pooled of this.sessions) {
      clearTimeout(pooled.idle);
      pooled.session.close();
    }
    this.sessions.clear();
  }

  /** Ends every connection and the streams on them. */
  destroy(): void {
    const sessions = [...this.sessions];
    this.close();
    for (const pooled of sessions) pooled.session.destroy();
  }

  private capacity(session: ClientHttp2Session): number {
    const allowed = session.remoteSettings?.maxConcurrentStreams ?? ASSUMED_MAX_STREAMS;
    return Math.min(allowed, this.options.maxStreamsPerSession ?? 250);
  }

  private async acquire(): Promise<PooledSession | undefined> {
    for (;;) {
      if (this.closed) throw new Error('HTTP/2 pool closed');
      if (this.unsupported) return undefined;
      for (const pooled of this.sessions) {
        if (pooled.active < this.capacity(pooled.session)) {
          pooled.active++;
          clearTimeout(pooled.idle);
          return pooled;
        }
      }
      // One connection is dialled at a time: those waiting share it, then look again.
      this.connecting ??= this.connect().finally(() => {
        this.connecting = undefined;
      });
      const connected = await this.connecting;
      if (!connected && !this.unsupported) throw new Error('HTTP/2 connection failed');
    }
  }

  private async connect(): Promise<PooledSession | undefined> {
    const url = new URL(this.options.server);
    const socket: TLSSocket = tlsConnect({
      secureContext: this.options.secureContext,
      ...this.options.verification,
      ...tlsTarget(this.options.server, this.options.verification.servername),
      // http/1.1 offered too: a server without h2 (Node's, Go's) refuses a client offering only h2
      // with a no_application_protocol alert instead of answering without ALPN.
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    if (socket.alpnProtocol !== 'h2') {
      socket.destroy();
      this.unsupported = true;
      return undefined;
    }
    // A peer gone without a word (a cable pulled) is noticed even while every stream is idle.
    socket.setKeepAlive(true, 30_000);
    const session = http2().connect(url, { createConnection: () => socket });
    const pooled: PooledSession = { session, active: 0 };
    const forget = () => {
      clearTimeout(pooled.idle);
      this.sessions.delete(pooled);
    };
    session.on('error', forget);
    session.once('close', forget);
    // After a GOAWAY the server takes no new streams here; the open ones finish.
    session.once('goaway', forget);
    await new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('error', reject);
      session.once('close', () => reject(new Error('HTTP/2 connection closed before its settings')));
    });
    if (this.closed) {
      session.close();
      return undefined;
    }
    this.sessions.add(pooled);
    this.scheduleIdleClose(pooled);
    return pooled;
  }

  private release(pooled: PooledSession): void {
    pooled.active--;
    if (pooled.active === 0) this.scheduleIdleClose(pooled);
  }

  private scheduleIdleClose(pooled: PooledSession): void {
    clearTimeout(pooled.idle);
    pooled.idle = setTimeout(() => {
      if (pooled.active > 0) return;
      this.sessions.delete(pooled);
      pooled.session.close();
    }, this.options.idleMs ?? 60_000);
    pooled.idle.unref();
  }
}
