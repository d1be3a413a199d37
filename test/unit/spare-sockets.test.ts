// TLS connections dialled ahead of time (src/kube/spare-sockets.ts), against a real TLS server on
// loopback: a take is a connected socket, a spare is dialled once it closes, an unused spare is closed
// after its idle time and not replaced, one the server closes is no spare any more, close() ends the spares.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createSecureContext, createServer, type Server, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SpareSockets } from '../../src/kube/spare-sockets.ts';
import { selfSignedServingCertificate } from '../../src/tls/pki.ts';
import { waitFor } from '../support/wait.ts';

let server: Server;
let port: number;
let ca: string;
const accepted = new Set<TLSSocket>();

beforeAll(async () => {
  const issued = await selfSignedServingCertificate('spare-test', ['127.0.0.1']);
  ca = issued.certificatePem;
  server = createServer({ key: issued.privateKeyPem, cert: issued.certificatePem }, (socket) => {
    accepted.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => accepted.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

afterAll(() => {
  for (const socket of accepted) socket.destroy();
  server.close();
});

function pool(idleMs = 60_000): SpareSockets {
  return new SpareSockets({
    connect: { host: '127.0.0.1', port, servername: '', secureContext: createSecureContext({ ca }) },
    idleMs,
  });
}

describe('spare TLS connections', () => {
  it('hands out a connected socket, and once it is closed dials a spare for the next one', async () => {
    const spares = pool();
    const first = await spares.take();
    expect(first.authorized && !first.connecting).toBe(true);
    // No spare while the first connection is in use (its session is starting).
    expect(spares.size).toBe(0);
    first.destroy();
    await waitFor('a spare dialled', () => (spares.size === 1 && accepted.size === 1 ? true : undefined));
    const second = await spares.take();
    expect(second.authorized && second !== first).toBe(true);
    expect(spares.size).toBe(0);
    // A burst takes fresh connections; their closing refills no more than the configured spares.
    const burst = await Promise.all([spares.take(), spares.take(), spares.take()]);
    for (const socket of [second, ...burst]) socket.destroy();
    await waitFor('a spare dialled again', () => (spares.size === 1 ? true : undefined));
    spares.close();
  });

  it('closes an unused spare after its idle time and dials no other', async () => {
    const spares = pool(300);
    (await spares.take()).destroy();
    await waitFor('a spare dialled', () => (spares.size > 0 ? true : undefined));
    await waitFor('idle spares closed', () => (spares.size === 0 ? true : undefined));
    await waitFor('the server sees them closed', () => (accepted.size === 0 ? true : undefined));
    spares.close();
  });

  it('forgets a spare the server closed', async () => {
    const spares = pool();
    (await spares.take()).destroy();
    await waitFor('a spare connected', () => (spares.size === 1 && accepted.size === 1 ? true : undefined));
    for (const socket of accepted) socket.destroy();
    await waitFor('spares forgotten', () => (spares.size === 0 ? true : undefined));
    // The next take still gets a working connection.
    const socket = await spares.take();
    expect(socket.authorized).toBe(true);
    socket.destroy();
    spares.close();
  });

  it('ends its spares when closed, and takes no more', async () => {
    const spares = pool();
    (await spares.take()).destroy();
    await waitFor('a spare connected', () => (accepted.size === 1 ? true : undefined));
    spares.close();
    await waitFor('the server sees them closed', () => (accepted.size === 0 ? true : undefined));
    await expect(spares.take()).rejects.toThrow('closed');
  });
});
