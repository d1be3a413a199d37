// exec and attach over the WebSocket channel protocols (v5, v4, channel.k8s.io and their base64
// forms), for clients whose WebSocket reaches the kubelet directly. Also the shared WebSocket upgrade.
import type { IncomingMessage } from 'node:http';
import { type Duplex, PassThrough } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import type { KubeStatus } from '../kube/errors.ts';
import { KubeletError, rejectUpgrade } from './http-errors.ts';
import {
  bridge,
  type CommandOptions,
  failureStatus,
  type InboundStreams,
  type PendingRemote,
  ResizeQueue,
  type SessionContext,
  startRemoteCommand,
  type TerminalSize,
} from './remotecommand.ts';
import {
  CHANNEL_ERROR,
  CHANNEL_RESIZE,
  CHANNEL_STDERR,
  CHANNEL_STDIN,
  CHANNEL_STDOUT,
  type ChannelCodec,
  channelCodec,
  headerList,
  negotiate,
  REMOTE_COMMAND_WS_PROTOCOLS,
} from './streams/channel.ts';
import { Valve, WebSocketChannelWriter } from './streams/flow.ts';

const server = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
});

/** Completes a WebSocket upgrade with the first protocol the client offered that we speak. */
export function upgradeToWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  supported: readonly string[],
  logger: Logger,
): Promise<{ ws: WebSocket; codec: ChannelCodec } | undefined> {
  const offered = headerList(req.headers['sec-websocket-protocol']);
  // An empty protocol list is the oldest client: it gets the plain channel protocol.
  const protocol = offered.length === 0 ? 'channel.k8s.io' : negotiate(offered, supported);
  if (!protocol) {
    rejectUpgrade(
      socket,
      new KubeletError(400, `none of the offered protocols ${offered.join(', ')} is supported`),
      logger,
    );
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    server.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      resolve({ ws, codec: channelCodec(protocol) });
    });
  });
}

export async function serveRemoteCommandWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  context: SessionContext,
  options: CommandOptions,
): Promise<void> {
  const { target, logger, bufferBytes, timer } = context;
  const upgraded = await upgradeToWebSocket(req, socket, head, REMOTE_COMMAND_WS_PROTOCOLS, logger);
  if (!upgraded) return;
  timer?.mark('upgraded');
  // The remote session opens while the client's side is set up (see startRemoteCommand).
  const pending = startRemoteCommand(target, options, timer);
  const { ws, codec } = upgraded;
  const stdin = options.stdin ? new PassThrough({ highWaterMark: bufferBytes / 2 }) : undefined;
  const resize = options.tty ? new ResizeQueue() : undefined;
  // The client's messages wait in its socket while stdin is backed up toward the remote.
  const toRemote = new Valve(ws, 'to_remote');
  ws.on('message', (message: Buffer, isBinary: boolean) => {
    const decoded = codec.decode(isBinary ? message : message.toString());
    if (!decoded) return;
    if ('close' in decoded) {
      if (decoded.close === CHANNEL_STDIN) stdin?.end();
      return;
    }
    if (decoded.channel === CHANNEL_STDIN && stdin && decoded.data.length > 0)
      toRemote.write(stdin, decoded.data);
    else if (decoded.channel === CHANNEL_RESIZE) {
      try {
        resize?.push(JSON.parse(decoded.data.toString()) as TerminalSize);
      } catch {
        // a malformed resize is ignored
      }
    }
  });
  // The first message, on the lowest channel the client reads, tells it the session is up.
  const first = options.stdout ? CHANNEL_STDOUT : options.stderr ? CHANNEL_STDERR : CHANNEL_ERROR;
  ws.send(codec.encode(first, Buffer.alloc(0)));

  const output = (channel: number) =>
    new WebSocketChannelWriter(ws, codec, channel, { highWaterMark: bufferBytes / 4 });
  const inbound: InboundStreams = {
    stdin,
    stdout: options.stdout ? output(CHANNEL_STDOUT) : undefined,
    stderr: options.stderr ? output(CHANNEL_STDERR) : undefined,
    resize,
    sendStatus: (status: KubeStatus) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (codec.structuredErrors)
        ws.send(codec.encode(CHANNEL_ERROR, Buffer.from(JSON.stringify({ metadata: {}, ...status }))));
      else if (status.status !== 'Success')
        ws.send(codec.encode(CHANNEL_ERROR, Buffer.from(status.message ?? 'error')));
    },
    close: () => {
      if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    },
    onGone: (listener) => ws.once('close', listener),
  };
  ws.once('close', () => {
    pending.abandon();
    stdin?.end();
  });
  let remote: Awaited<PendingRemote['ready']>;
  try {
    remote = await pending.ready;
  } catch (error) {
    inbound.sendStatus(
      failureStatus((error as Error).message, error instanceof KubeletError ? error.status : 500),
    );
    inbound.close();
    return;
  }
  await bridge(inbound, remote.remote, logger, bufferBytes, timer, remote.release);
}
