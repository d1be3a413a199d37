// A TCP proxy on 127.0.0.1 in front of a real API server, through which Spillway reaches it, so that
// the chaos suite can partition Spillway from one cluster while that cluster (and everything else that
// uses it) keeps running. A partition is a black hole, as a cut network is: bytes stop flowing both
// ways (sockets are paused, so the kernel's windows fill), new connections are accepted but carry
// nothing, and nothing is reset; healing lets everything held flow again.
import { connect, createServer, type Server, type Socket } from 'node:net';

export class FaultProxy {
  private readonly server: Server;
  private readonly target: { host: string; port: number };
  private readonly sockets = new Set<Socket>();
  private partitioned = false;
  port = 0;

  constructor(target: string) {
    const url = new URL(target);
    if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') {
      throw new Error(`fault proxy: only loopback targets (${target})`);
    }
    this.target = { host: url.hostname, port: Number(url.port || 443) };
    this.server = createServer((client) => this.accept(client));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('fault proxy: no port');
    this.port = address.port;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get isPartitioned(): boolean {
    return this.partitioned;
  }

  /** Cuts every connection, open or new, without closing any. */
  partition(): void {
    this.partitioned = true;
    for (const socket of this.sockets) socket.pause();
  }

  heal(): void {
    this.partitioned = false;
    for (const socket of this.sockets) socket.resume();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    this.forward(client, upstream);
    this.forward(upstream, client);
    if (this.partitioned) {
      client.pause();
      upstream.pause();
    }
  }

  /** Copies one direction by hand (not pipe(), whose flow control would resume a partitioned socket). */
  private forward(from: Socket, to: Socket): void {
    from.on('data', (chunk) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!this.partitioned) from.resume();
    });
    from.on('end', () => to.end());
  }
}
