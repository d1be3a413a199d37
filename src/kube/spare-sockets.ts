// TLS connections dialled ahead of time, for requests that cannot share a connection: an upgrade
// (exec, attach, port-forward) takes its connection for good, so without a spare each one waits for a
// TCP connect and a TLS handshake (two round trips to a remote cluster that may be far away). A spare
// is dialled when a taken connection closes (up to `spares` wait at once), not while its session
// starts; one left unused for `idleMs` is closed and not replaced, so an idle process holds nothing
// and dials nothing. Handshakes resume the last
// TLS session, which skips the certificate exchange and checks.
import { type ConnectionOptions, connect, type TLSSocket } from 'node:tls';

export interface SpareSocketOptions {
  /** Where and how to connect (host, port, secureContext, servername, rejectUnauthorized). */
  readonly connect: ConnectionOptions;
  /** Connections kept ready at most (default 1). */
  readonly spares?: number;
  /**
   * A spare unused this long is closed (default 20 s: under the 32 s an API server waits for a first
   * request on a connection before it closes it).
   */
  readonly idleMs?: number;
}

/** Host, port and SNI name for an https server URL (no SNI for an IP address: it is not allowed). */
export function tlsTarget(
  server: string,
  servername: string | undefined,
): { host: string; port: number; servername: string } {
  const url = new URL(server);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return {
    host,
    port: Number(url.port || 443),
    servername: servername ?? (/^[\d.]+$|:/.test(host) ? '' : host),
  };
}

interface Spare {
  readonly socket: TLSSocket;
  readonly ready: Promise<void>;
  connected: boolean;
  timer?: NodeJS.Timeout;
}

export class SpareSockets {
  private readonly options: SpareSocketOptions;
  private readonly spares = new Set<Spare>();
  private session: Buffer | undefined;
  private closed = false;

  constructor(options: SpareSocketOptions) {
    this.options = options;
  }

  /** Spares connected or connecting (for tests). */
  get size(): number {
    return this.spares.size;
  }

  /**
   * A connected TLS socket: a spare when one is ready, else one dialled now (and then a spare for the
   * next caller, whichever it was). Rejects when the connection fails.
   */
  async take(): Promise<TLSSocket> {
    if (this.closed) throw new Error('connections closed');
    // A connected spare first, else one still connecting (it started earlier than a new one would).
    const alive = [...this.spares].filter((spare) => !spare.socket.destroyed);
    const spare = alive.find((candidate) => candidate.connected) ?? alive[0] ?? this.dial();
    this.forget(spare);
    // The replacement is dialled once this one is done with: its handshake (CPU in both processes)
    // then competes with no session's critical path.
    spare.socket.once('close', () => this.refill());
    await spare.ready;
    return spare.socket;
  }

  /** Closes the spares; taken sockets are their takers'. */
  close(): void {
    this.closed = true;
    for (const spare of this.spares) spare.socket.destroy();
    this.spares.clear();
  }

  private refill(): void {
    // Spares still connecting count: a burst of takes does not start a burst of dials.
    while (!this.closed && this.spares.size < (this.options.spares ?? 1)) this.addSpare();
  }

  private addSpare(): void {
    const spare = this.dial();
    spare.ready.catch(() => {});
    this.spares.add(spare);
    spare.timer = setTimeout(() => {
      this.forget(spare);
      spare.socket.destroy();
    }, this.options.idleMs ?? 20_000);
    spare.timer.unref();
    // The server closed it (or it failed): it is no spare any more.
    spare.socket.once('close', () => this.forget(spare));
  }

  private forget(spare: Spare): void {
    clearTimeout(spare.timer);
    this.spares.delete(spare);
  }

  private dial(): Spare {
    const socket = connect({ ...this.options.connect, session: this.session });
    // No Nagle: an interactive session's keystrokes and small frames go out at once.
    socket.setNoDelay(true);
    socket.on('session', (session: Buffer) => {
      this.session = session;
    });
    const spare: Spare = {
      socket,
      connected: false,
      ready: new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => {
          spare.connected = true;
          resolve();
        });
        socket.once('error', (error) => {
          // A session the server no longer takes is not offered again.
          if (socket.isSessionReused()) this.session = undefined;
          reject(error);
        });
      }),
    };
    // Errors of a spare nobody took yet are not anyone's to handle.
    socket.on('error', () => {});
    return spare;
  }
}
