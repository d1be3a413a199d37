// Port-forward to a remote pod: over SPDY (kubectl, through the API server: error and data streams
// paired by requestID, many TCP connections on one session) and over the legacy WebSocket protocol
// (one channel pair per port). Each forwarded connection is one WebSocket to the remote API server's
// pods/portforward (v4.channel.k8s.io), whose first message per channel carries the port, which is
// stripped.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { badRequest, rejectUpgrade } from './http-errors.ts';
import { openRemoteWebSocket } from './remote-ws.ts';
import { upgradeToSpdy } from './remotecommand-spdy.ts';
import { upgradeToWebSocket } from './remotecommand-ws.ts';
import type { ResolvedPod } from './resolve.ts';
import { channelCodec, PORT_FORWARD_WS_PROTOCOLS } from './streams/channel.ts';
import type { SpdyStream } from './streams/spdy/session.ts';

const PAIR_TIMEOUT_MS = 30_000;

function parsePort(value: string | undefined): number {
  const port = Number(value);
  if (!/^\d+$/.test(value ?? '') || port < 1 || port > 65535) throw badRequest(`invalid port "${value}"`);
  return port;
}

interface RemoteConnection {
  send(data: Buffer): void;
  close(): void;
}

/** One forwarded TCP connection to the remote pod's port; calls back with data, errors and the end. */
async function connectRemote(
  target: ResolvedPod,
  port: number,
  handlers: { data: (chunk: Buffer) => void; error: (message: string) => void; end: () => void },
): Promise<RemoteConnection> {
  const path = `/api/v1/namespaces/${target.delegateNamespace}/pods/${target.delegateName}/portforward`;
  const ws = await openRemoteWebSocket(
    target.remote.client,
    path,
    new URLSearchParams({ ports: String(port) }),
    ['v4.channel.k8s.io'],
  );
  const codec = channelCodec('v4.channel.k8s.io');
  const prefixSeen = [false, false];
  ws.on('message', (message: Buffer) => {
    const decoded = codec.decode(message);
    if (!decoded || 'close' in decoded || decoded.channel > 1) return;
    let data = decoded.data;
    // Each channel's first message starts with the port, two bytes little-endian.
    if (!prefixSeen[decoded.channel]) {
      prefixSeen[decoded.channel] = true;
      data = data.subarray(2);
    }
    if (data.length === 0) return;
    if (decoded.channel === 0) handlers.data(data);
    else handlers.error(data.toString());
  });
  ws.on('close', () => handlers.end());
  ws.on('error', () => handlers.end());
  return {
    send: (data) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(codec.encode(0, data));
    },
    close: () => {
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
      setTimeout(() => ws.terminate(), 2000).unref();
    },
  };
}

/** Bridges one error+data stream pair to a new remote connection. */
async function forwardPair(
  target: ResolvedPod,
  data: SpdyStream,
  error: SpdyStream,
  logger: Logger,
): Promise<void> {
  let port: number;
  try {
    port = parsePort(data.header('port'));
  } catch (failure) {
    error.end(`${(failure as Error).message}`);
    data.end();
    return;
  }
  let remote: RemoteConnection;
  try {
    remote = await connectRemote(target, port, {
      data: (chunk) => data.write(chunk),
      error: (message) => error.write(message),
      end: () => {
        data.end();
        error.end();
      },
    });
  } catch (failure) {
    error.end(
      `error forwarding port ${port} to pod ${target.namespace}/${target.name}: ${(failure as Error).message}`,
    );
    data.end();
    return;
  }
  data.on('data', (chunk: Buffer) => remote.send(chunk));
  data.on('end', () => remote.close());
  data.on('close', () => remote.close());
  logger.debug({ port, requestId: data.header('requestid') }, 'forwarding a connection');
}

export function servePortForwardSpdy(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  target: ResolvedPod,
  logger: Logger,
): void {
  const upgraded = upgradeToSpdy(req, socket, head, ['portforward.k8s.io'], logger);
  if (!upgraded) return;
  const { session } = upgraded;
  const pending = new Map<string, { data?: SpdyStream; error?: SpdyStream; timer: NodeJS.Timeout }>();
  session.on('stream', (stream) => {
    stream.on('error', () => {});
    const type = stream.header('streamtype');
    if (type !== 'data' && type !== 'error') {
      stream.reset();
      return;
    }
    // Old clients send no requestID: pair error N with data N+2, as the kubelet does.
    const requestId = stream.header('requestid') ?? String(type === 'error' ? stream.id : stream.id - 2);
    const entry = pending.get(requestId) ?? {
      timer: setTimeout(() => {
        const stale = pending.get(requestId);
        pending.delete(requestId);
        stale?.data?.reset();
        stale?.error?.reset();
      }, PAIR_TIMEOUT_MS),
    };
    pending.set(requestId, entry);
    if (type === 'data') entry.data = stream;
    else entry.error = stream;
    if (entry.data && entry.error) {
      clearTimeout(entry.timer);
      pending.delete(requestId);
      void forwardPair(target, entry.data, entry.error, logger);
    }
  });
  session.once('close', () => {
    for (const entry of pending.values()) clearTimeout(entry.timer);
    pending.clear();
  });
}

/** The legacy WebSocket port-forward: `?port=80,443`; channel 2i carries data for port i, 2i+1 errors. */
export async function servePortForwardWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  target: ResolvedPod,
  query: URLSearchParams,
  logger: Logger,
): Promise<void> {
  let ports: number[];
  try {
    ports = (query.get('port') ?? query.get('ports') ?? '').split(',').filter(Boolean).map(parsePort);
    if (ports.length === 0) throw badRequest('query parameter "port" is required');
  } catch (error) {
    rejectUpgrade(socket, error, logger);
    return;
  }
  const upgraded = await upgradeToWebSocket(req, socket, head, PORT_FORWARD_WS_PROTOCOLS, logger);
  if (!upgraded) return;
  const { ws, codec } = upgraded;
  const prefix = (port: number) => Buffer.from([port & 0xff, port >> 8]);
  const remotes: RemoteConnection[] = [];
  for (const [i, port] of ports.entries()) {
    ws.send(codec.encode(2 * i, prefix(port)));
    ws.send(codec.encode(2 * i + 1, prefix(port)));
    try {
      remotes[i] = await connectRemote(target, port, {
        data: (chunk) => ws.readyState === WebSocket.OPEN && ws.send(codec.encode(2 * i, chunk)),
        error: (message) =>
          ws.readyState === WebSocket.OPEN && ws.send(codec.encode(2 * i + 1, Buffer.from(message))),
        end: () => ws.close(1000),
      });
    } catch (error) {
      ws.send(codec.encode(2 * i + 1, Buffer.from((error as Error).message)));
      ws.close(1000);
      return;
    }
  }
  ws.on('message', (message: Buffer, isBinary: boolean) => {
    const decoded = codec.decode(isBinary ? message : message.toString());
    if (!decoded || 'close' in decoded || decoded.channel % 2 !== 0) return;
    remotes[decoded.channel / 2]?.send(decoded.data);
  });
  ws.once('close', () => {
    for (const remote of remotes) remote.close();
  });
}
