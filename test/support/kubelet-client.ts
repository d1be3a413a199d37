// Direct HTTPS calls to Spillway's kubelet port, as the API server and metrics-server make them.
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import WebSocket from 'ws';

export interface Credentials {
  readonly cert?: string;
  readonly key?: string;
  readonly token?: string;
}

/** The client certificate in a kubeconfig: what the API server presents is the same kind of credential. */
export async function kubeconfigCredentials(kubeconfig: string): Promise<Credentials> {
  const text = await readFile(kubeconfig, 'utf8');
  const field = (name: string) =>
    Buffer.from(new RegExp(`${name}: (\\S+)`).exec(text)?.[1] ?? '', 'base64').toString();
  return { cert: field('client-certificate-data'), key: field('client-key-data') };
}

/** GET (or another method) on the kubelet port (the serving certificate is not verified: these tests are about the API). */
export function kubeletGet(
  port: number,
  path: string,
  credentials: Credentials = {},
  extraHeaders: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        rejectUnauthorized: false,
        cert: credentials.cert,
        key: credentials.key,
        headers: {
          ...(credentials.token ? { authorization: `Bearer ${credentials.token}` } : {}),
          ...extraHeaders,
        },
      },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Opens a WebSocket to the kubelet port (as a client whose upgrade reaches the kubelet directly);
 * resolves with the socket once open, or with the status of the refused upgrade and its body.
 */
export function kubeletWebSocket(
  port: number,
  path: string,
  protocol: string,
  credentials: Credentials = {},
): Promise<{ ws?: WebSocket; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}${path}`, [protocol], {
      rejectUnauthorized: false,
      cert: credentials.cert,
      key: credentials.key,
      headers: credentials.token ? { authorization: `Bearer ${credentials.token}` } : {},
    });
    ws.once('open', () => resolve({ ws, status: 101, body: '' }));
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    ws.once('error', (error) => {
      if (ws.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}
