// Port-forward to a remote pod: over SPDY (kubectl, through the API server: error and data streams
// paired by requestID, many TCP connections on one session) and over the legacy WebSocket protocol
// (one channel pair per port). Each forwarded connection is one WebSocket to the remote API server's
// pods/portforward (v4.channel.k8s.io), whose first message per channel carries the port, which is
// stripped. Both directions have backpressure: a slow reader pauses the remote WebSocket, a slow pod
// holds the client back.
import type { IncomingMessage } from 'node:http';
import { type Duplex, PassThrough, type Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import WebSocket from 'ws';
import { badRequest, rejectUpgrade } from './http-errors.ts';
import { openRemoteWebSocket } from './remote-ws.ts';
import type { SessionContext } from './remotecommand.ts';
import { upgradeToSpdy } from './remotecommand-spdy.ts';
import { upgradeToWebSocket } from './remotecommand-ws.ts';
import type { ResolvedPod } from './resolve.ts';
import { channelCodec, PORT_FORWARD_WS_PROTOCOLS } from './streams/channel.ts';
import { Valve, WebSocketChannelWriter } from './streams/flow.ts';
import type { SpdyStream } from './streams/spdy/session.ts';

const PAIR_TIMEOUT_MS = 30_000;
/** After the client stops sending, the pod's side gets this long to finish (as containerd does). */
const HALF_CLOSE_GRACE_MS = 1000;

function parsePort(value: string | undefined): number {
  const port = Number(value);
  if (!/^\d+$/.test(value ?? '') || port < 1 || port > 65535) throw badRequest(`invalid port "${value}"`);
  return port;
}

function openRemotePort(target: ResolvedPod, port: number): Promise<WebSocket> {
  const path = `/api/v1/namespaces/${target.delegateNamespace}/pods/${target.delegateName}/portforward`;
  return openRemoteWebSocket(target.remote.client, path, new URLSearchParams({ ports: String(port) }), [
    'v4.channel.k8s.io',
  ]);
}

/** The client's side of one forwarded connection, whatever protocol carries it. */
interface ClientPort {
  /** What the pod sends, toward the client. */
  readonly data: Writable;
  /** What the client sends, toward the pod; its end is the client's half-close. */
  readonly upload: Readable;
  error(message: string): void;
  /** The pod's side is done: end the client's side once everything written has gone out. */
  end(): void;
  onGone(listener: () => void): void;
}

/** Carries one forwarded connection between the client and a remote port-forward WebSocket. */
function bridgePort(remote: WebSocket, client: ClientPort, bufferBytes: number): void {
  const codec = channelCodec('v4.channel.k8s.io');
  const toClient = new Valve(remote, 'to_client');
  const prefixSeen = [false, false];
  remote.on('message', (message: Buffer) => {
    const decoded = codec.decode(message);
    if (!decoded || 'close' in decoded || decoded.channel > 1) return;
    let data = decoded.data;
    // Each channel's first message starts with the port, two bytes little-endian.
    if (!prefixSeen[decoded.channel]) {
      prefixSeen[decoded.channel] = true;
      data = data.subarray(2);
    }
    if (data.length === 0) return;
    if (decoded.channel === 0) toClient.write(client.data, data);
    else client.error(data.toString());
  });
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    client.end();
  };
  remote.on('close', end);
  remote.on('error', end);
  const closeRemote = () => {
    if (remote.readyState === WebSocket.OPEN || remote.readyState === WebSocket.CONNECTING)
      remote.close(1000);
    setTimeout(() => remote.terminate(), 2000).unref();
  };
  const toRemote = new WebSocketChannelWriter(remote, codec, 0, { highWaterMark: bufferBytes / 2 });
  client.upload.on('error', () => {});
  client.upload.pipe(toRemote, { end: false });
  // The v4 protocol cannot pass a half-close on: the pod's side gets a moment to finish, then it ends.
  client.upload.once('end', () => setTimeout(closeRemote, HALF_CLOSE_GRACE_MS).unref());
  client.onGone(closeRemote);
}

/** Bridges one error+data stream pair to a new remote connection. */
async function forwardPair(context: SessionContext, data: SpdyStream, error: SpdyStream): Promise<void> {
  const { target, logger, bufferBytes } = context;
  // The client half-closes the error stream at once and never writes to it.
  error.resume();
  let port: number;
  try {
    port = parsePort(data.header('port'));
  } catch (failure) {
    error.end(`${(failure as Error).message}`);
    data.end();
    return;
  }
  let remote: WebSocket;
  try {
    remote = await openRemotePort(target, port);
  } catch (failure) {
    error.end(
      `error forwarding port ${port} to pod ${target.namespace}/${target.name}: ${(failure as Error).message}`,
    );
    data.end();
    return;
  }
  bridgePort(
    remote,
    {
      data,
      upload: data,
      error: (message) => error.write(message),
      end: () => {
        data.end();
        error.end();
      },
      onGone: (listener) => data.once('close', listener),
    },
    bufferBytes,
  );
  logger.debug({ port, requestId: data.header('requestid') }, 'forwarding a connection');
}

export function servePortForwardSpdy(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  context: SessionContext,
): void {
  const upgraded = upgradeToSpdy(
    req,
    socket,
    head,
    ['portforward.k8s.io'],
    context.logger,
    context.bufferBytes,
  );
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
      void forwardPair(context, entry.data, entry.error);
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
  context: SessionContext,
  query: URLSearchParams,
): Promise<void> {
  const { target, logger, bufferBytes } = context;
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
  // What the client sends for port i waits in its socket while that port's remote is backed up.
  const fromClient = new Valve(ws, 'to_remote');
  const uploads = ports.map(() => new PassThrough({ highWaterMark: bufferBytes / 2 }));
  const downloads: WebSocketChannelWriter[] = [];
  ws.on('message', (message: Buffer, isBinary: boolean) => {
    const decoded = codec.decode(isBinary ? message : message.toString());
    if (!decoded || 'close' in decoded || decoded.channel % 2 !== 0) return;
    const upload = uploads[decoded.channel / 2];
    if (upload && decoded.data.length > 0) fromClient.write(upload, decoded.data);
  });
  ws.once('close', () => {
    for (const upload of uploads) upload.end();
  });
  let closing = false;
  // The WebSocket carries every port: it closes when the first port's remote ends, after its data.
  const closeClient = async () => {
    if (closing) return;
    closing = true;
    await Promise.all(downloads.map((d) => finished(d, { readable: false }).catch(() => {})));
    if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  };
  for (const [i, port] of ports.entries()) {
    ws.send(codec.encode(2 * i, prefix(port)));
    ws.send(codec.encode(2 * i + 1, prefix(port)));
    let remote: WebSocket;
    try {
      remote = await openRemotePort(target, port);
    } catch (error) {
      ws.send(codec.encode(2 * i + 1, Buffer.from((error as Error).message)));
      ws.close(1000);
      return;
    }
    const download = new WebSocketChannelWriter(ws, codec, 2 * i, { highWaterMark: bufferBytes / 4 });
    downloads.push(download);
    bridgePort(
      remote,
      {
        data: download,
        upload: uploads[i] as PassThrough,
        error: (message) =>
          ws.readyState === WebSocket.OPEN && ws.send(codec.encode(2 * i + 1, Buffer.from(message))),
        end: () => {
          for (const d of downloads) d.end();
          void closeClient();
        },
        onGone: (listener) => ws.once('close', listener),
      },
      bufferBytes,
    );
  }
}
