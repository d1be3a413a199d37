// Starting a server: resolves once it listens, rejects with the bind error (a port in use, an address
// this machine does not have) instead of emitting it later.
import type { Server } from 'node:net';

export function listen(server: Server, port: number, address: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
