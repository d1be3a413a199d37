// The follow pool's protocol choice (src/kube/http2.ts), against real TLS servers on loopback: a server
// that negotiates only HTTP/1.1 by ALPN (as a TLS-terminating proxy in front of an API server may) gets
// `undefined` from the pool, so the client falls back to HTTP/1.1, and is remembered as such (no second
// dial); a server that speaks h2 carries concurrent streams on one connection.
import { once } from 'node:events';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Http2Pool } from '../../src/kube/http2.ts';
import { selfSignedServingCertificate } from '../../src/tls/pki.ts';

let http1: Server;
let http2: Http2SecureServer;
let http1Url: string;
let http2Url: string;
let http1Connections = 0;
let http2Connections = 0;
const verification = { rejectUnauthorized: false } as const;

async function listen(server: Server | Http2SecureServer): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const issued = await selfSignedServingCertificate('pool', ['127.0.0.1']);
  const tls = { key: issued.privateKeyPem, cert: issued.certificatePem };
  http1 = createServer(tls, (_request, response) => response.end('http/1.1'));
  http1.on('connection', () => http1Connections++);
  http2 = createSecureServer(tls, (request, response) => response.end(`h2 ${request.url}`));
  http2.on('connection', () => http2Connections++);
  [http1Url, http2Url] = await Promise.all([listen(http1), listen(http2)]);
});

afterAll(() => {
  http1.close();
  http2.close();
});

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  let body = '';
  for await (const chunk of stream) body += chunk.toString();
  return body;
}

describe('HTTP/2 follow pool', () => {
  it('answers undefined for a server without h2, and does not dial it again', async () => {
    const pool = new Http2Pool({ server: http1Url, secureContext: createSecureContext({}), verification });
    try {
      expect(await pool.get('/a', {})).toBeUndefined();
      expect(await pool.get('/b', {})).toBeUndefined();
      expect(pool.connections).toBe(0);
      expect(http1Connections).toBe(1);
    } finally {
      pool.destroy();
    }
  });

  it('carries concurrent streams to an h2 server on one connection', async () => {
    const pool = new Http2Pool({ server: http2Url, secureContext: createSecureContext({}), verification });
    try {
      const responses = await Promise.all(['/one', '/two', '/three'].map((path) => pool.get(path, {})));
      const bodies = await Promise.all(
        responses.map((response) => {
          expect(response?.status).toBe(200);
          return text(response?.body as NodeJS.ReadableStream);
        }),
      );
      expect(bodies).toEqual(['h2 /one', 'h2 /two', 'h2 /three']);
      expect(http2Connections).toBe(1);
    } finally {
      pool.destroy();
    }
  });

  it('refuses a plain http server at construction', () => {
    expect(
      () =>
        new Http2Pool({ server: 'http://127.0.0.1:1', secureContext: createSecureContext({}), verification }),
    ).toThrow(/must be https/);
  });
});
