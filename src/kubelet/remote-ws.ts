// WebSocket connections to a remote API server's streaming subresources (exec, attach, port-forward),
// authenticated with the remote's credentials. Failures to connect carry the server's status and message.
//
// Each session is a connection of its own (an upgraded connection cannot be shared): it is one the
// remote's client dialled ahead of time (TLS established) when one is ready, so that the upgrade
// request goes out at once instead of after a TCP connect and a TLS handshake.
import WebSocket from 'ws';
import type { ClusterClient } from '../kube/client.ts';
import { KubeletError } from './http-errors.ts';
import type { PhaseTimer } from './timing.ts';

export interface RemoteWebSocketOptions {
  readonly signal?: AbortSignal;
  /** Marks `remote-tls` (handshake done) and `remote-connected` (upgraded). */
  readonly timer?: PhaseTimer;
}

export async function openRemoteWebSocket(
  client: ClusterClient,
  path: string,
  query: URLSearchParams,
  protocols: readonly string[],
  { signal, timer }: RemoteWebSocketOptions = {},
): Promise<WebSocket> {
  const url = new URL(`${client.server}${path}?${query.toString()}`);
  const secure = url.protocol === 'https:';
  url.protocol = secure ? 'wss:' : 'ws:';
  // The connection is one dialled ahead of time when one is ready (see kube/spare-sockets.ts).
  const [authorization, connection] = await Promise.all([
    client.kubeConfig.authorization(),
    secure ? client.upgradeSocket() : undefined,
  ]).catch((error: Error) => {
    throw new KubeletError(502, `remote cluster ${client.name}: ${error.message}`);
  });
  timer?.mark('remote-tls');
  if (signal?.aborted) {
    connection?.destroy();
    signal.throwIfAborted();
  }
  const socket = new WebSocket(url, [...protocols], {
    headers: authorization ? { authorization } : {},
    ...(connection ? ({ createConnection: () => connection } as object) : {}),
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
    if (signal?.aborted) abort();
    signal?.addEventListener('abort', abort, { once: true });
    socket.once('open', () => {
      signal?.removeEventListener('abort', abort);
      timer?.mark('remote-connected');
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

type HeldEvent = ['message', Buffer, boolean] | ['close', number, Buffer] | ['error', Error];

/**
 * Holds an open WebSocket's events until its consumer is ready: the socket stops reading, and what was
 * read already (at most one read's worth of messages) and a close or error are replayed in order to
 * the listeners present when the returned function is called.
 */
export function holdEvents(ws: WebSocket): () => void {
  const held: HeldEvent[] = [];
  const onMessage = (data: Buffer, isBinary: boolean) => held.push(['message', data, isBinary]);
  const onClose = (code: number, reason: Buffer) => held.push(['close', code, reason]);
  const onError = (error: Error) => held.push(['error', error]);
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', onError);
  ws.pause();
  return () => {
    ws.off('message', onMessage);
    ws.off('close', onClose);
    ws.off('error', onError);
    // Reading resumes first (new data arrives on a later turn, after the replay), so that a consumer
    // pausing the socket while it takes the held messages stays paused.
    if (ws.readyState === WebSocket.OPEN) ws.resume();
    for (const event of held) {
      if (event[0] === 'error' && ws.listenerCount('error') === 0) continue;
      const [name, ...args] = event;
      ws.emit(name, ...args);
    }
  };
}
