// WebSocket connections to a remote API server's streaming subresources (exec, attach, port-forward),
// authenticated with the remote's credentials. Failures to connect carry the server's status and message.
import type { RequestOptions } from 'node:https';
import WebSocket from 'ws';
import type { ClusterClient } from '../kube/client.ts';
import { KubeletError } from './http-errors.ts';

export async function openRemoteWebSocket(
  client: ClusterClient,
  path: string,
  query: URLSearchParams,
  protocols: readonly string[],
  signal?: AbortSignal,
): Promise<WebSocket> {
  const url = new URL(`${client.server}${path}?${query.toString()}`);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const options: RequestOptions = { headers: {} };
  await client.kubeConfig.applyToHTTPSOptions(options);
  const socket = new WebSocket(url, [...protocols], {
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    headers: options.headers as Record<string, string>,
    rejectUnauthorized: options.rejectUnauthorized,
    // tls.connect options pass through ws to the TLS socket.
    ...(options.servername ? ({ servername: options.servername } as object) : {}),
    handshakeTimeout: 30_000,
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
    // Frames that arrive with the upgrade response are parsed on a nextTick, before the caller's
    // `await` resumes and attaches its 'message' listener; deferring events to setImmediate keeps
    // them (a real kubelet's port-forward sends its port prefix at once, and it was lost).
    allowSynchronousEvents: false,
  });
  return new Promise((resolve, reject) => {
    const abort = () => socket.terminate();
    signal?.addEventListener('abort', abort, { once: true });
    socket.once('open', () => {
      signal?.removeEventListener('abort', abort);
      resolve(socket);
    });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => {
        if (body.length < 4096) body += chunk.toString();
      });
      response.on('end', () => {
        let message = body.trim();
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? message;
        } catch {
          // not a Status: keep the text
        }
        const status = response.statusCode ?? 502;
        reject(
          new KubeletError(
            status >= 500 ? 502 : status,
            `remote cluster ${client.name}: ${message || `HTTP ${status}`}`,
          ),
        );
      });
      response.on('error', reject);
    });
    socket.once('error', (error) =>
      reject(new KubeletError(502, `remote cluster ${client.name}: ${error.message}`)),
    );
  });
}
