// exec and attach over SPDY/3.1, the way the API server calls a kubelet for kubectl: protocol
// negotiation, 101, then the client opens one stream per stdio channel (error, stdin, stdout, stderr,
// resize) which are bridged to the remote.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
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
import { headerList, negotiate } from './streams/channel.ts';
import { SpdySession, type SpdyStream } from './streams/spdy/session.ts';

/** What we answer to, in the client's order of preference (v5 behaves as v4 over SPDY). */
export const SPDY_REMOTE_COMMAND_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v3.channel.k8s.io',
  'v2.channel.k8s.io',
  'channel.k8s.io',
];

const STREAM_CREATION_TIMEOUT_MS = 30_000;

function versionOf(protocol: string): number {
  return Number(/^v(\d+)\./.exec(protocol)?.[1] ?? 1);
}

/** Negotiates a stream protocol and switches the connection to SPDY/3.1; answers errors itself. */
export function upgradeToSpdy(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  supported: readonly string[],
  logger: Logger,
  bufferBytes: number,
): { session: SpdySession; protocol: string } | undefined {
  const offered = headerList(req.headers['x-stream-protocol-version']);
  const connection = String(req.headers.connection ?? '').toLowerCase();
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  if (!connection.includes('upgrade') || !upgrade.includes('spdy/3.1')) {
    rejectUpgrade(
      socket,
      new KubeletError(400, 'unable to upgrade: missing upgrade headers in request'),
      logger,
    );
    return undefined;
  }
  if (offered.length === 0) {
    rejectUpgrade(
      socket,
      new KubeletError(400, 'unable to upgrade: no X-Stream-Protocol-Version header'),
      logger,
    );
    return undefined;
  }
  const protocol = negotiate(offered, supported);
  if (!protocol) {
    rejectUpgrade(
      socket,
      new KubeletError(
        403,
        `unable to upgrade: none of the offered protocols ${offered.join(', ')} is supported`,
      ),
      logger,
      {
        'X-Accepted-Stream-Protocol-Versions': [...supported],
      },
    );
    return undefined;
  }
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
  );
  // Half of the budget for what the client sends, half for what it receives (split among the streams
  // written to: stdout and stderr, or one forwarded connection's data).
  const session = new SpdySession(socket, head, {
    receiveBufferBytes: bufferBytes / 2,
    sendBufferBytes: bufferBytes / 4,
  });
  session.on('failure', (error) =>
    logger.info({ err: error.message }, 'SPDY session ended by a protocol error'),
  );
  return { session, protocol };
}

/** Waits until the client has opened every stream we expect (unexpected ones are reset). */
function collectStreams(
  session: SpdySession,
  expected: ReadonlySet<string>,
): Promise<Map<string, SpdyStream>> {
  return new Promise((resolve, reject) => {
    const streams = new Map<string, SpdyStream>();
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error('timed out waiting for client to create streams'));
    }, STREAM_CREATION_TIMEOUT_MS);
    const onStream = (stream: SpdyStream) => {
      stream.on('error', () => {});
      const type = stream.header('streamtype') ?? '';
      if (!expected.has(type) || streams.has(type)) {
        stream.reset();
        return;
      }
      streams.set(type, stream);
      if (streams.size === expected.size) {
        cleanup();
        resolve(streams);
      }
    };
    const onClose = () => {
      cleanup();
      reject(new Error('client closed the connection before creating its streams'));
    };
    const cleanup = () => {
      clearTimeout(timer);
      session.off('stream', onStream);
      session.off('close', onClose);
    };
    session.on('stream', onStream);
    session.on('close', onClose);
  });
}

function resizeEvents(stream: SpdyStream): ResizeQueue {
  const events = new ResizeQueue();
  let buffered = '';
  stream.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf('\n');
      if (!line) continue;
      try {
        const size = JSON.parse(line) as Partial<TerminalSize> & { width?: number; height?: number };
        events.push({
          Width: Number(size.Width ?? size.width ?? 0),
          Height: Number(size.Height ?? size.height ?? 0),
        });
      } catch {
        // a malformed resize is ignored, as the kubelet ignores it
      }
    }
    // A resize message is tiny; a client that sends megabytes without newlines is not resizing.
    if (buffered.length > 64 * 1024) stream.reset();
  });
  return events;
}

export async function serveRemoteCommandSpdy(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  context: SessionContext,
  options: CommandOptions,
): Promise<void> {
  const { target, logger, bufferBytes, timer } = context;
  const upgraded = upgradeToSpdy(req, socket, head, SPDY_REMOTE_COMMAND_PROTOCOLS, logger, bufferBytes);
  timer?.mark('upgraded');
  if (!upgraded) return;
  // The remote session opens while the client opens its streams (see startRemoteCommand): once the
  // upgrade is accepted, so that a request refused at negotiation never starts a command.
  const pending = startRemoteCommand(target, options, timer);
  const { session, protocol } = upgraded;
  session.once('close', () => pending.abandon());
  const version = versionOf(protocol);
  const expected = new Set(['error']);
  if (options.stdin) expected.add('stdin');
  if (options.stdout) expected.add('stdout');
  if (options.stderr) expected.add('stderr');
  if (options.tty && version >= 3) expected.add('resize');

  let streams: Map<string, SpdyStream>;
  try {
    streams = await collectStreams(session, expected);
    timer?.mark('streams-opened');
  } catch (error) {
    logger.info({ err: (error as Error).message }, 'exec session abandoned');
    pending.abandon();
    session.close();
    return;
  }
  const errorStream = streams.get('error') as SpdyStream;
  // Nothing is expected from the client on the error stream: whatever comes is read and dropped.
  errorStream.resume();
  const inbound: InboundStreams = {
    stdin: streams.get('stdin'),
    stdout: streams.get('stdout'),
    stderr: streams.get('stderr'),
    resize: streams.has('resize') ? resizeEvents(streams.get('resize') as SpdyStream) : undefined,
    sendStatus: (status: KubeStatus) => {
      if (session.isClosed) return;
      // v4 and v5 carry a metav1.Status (exit codes); older protocols only an error text.
      if (version >= 4) errorStream.write(JSON.stringify({ metadata: {}, ...status }));
      else if (status.status !== 'Success') errorStream.write(status.message ?? 'error');
      errorStream.end();
    },
    close: () => session.close(),
    onGone: (listener) => session.once('close', listener),
  };
  let remote: Awaited<PendingRemote['ready']>;
  try {
    remote = await pending.ready;
  } catch (error) {
    const status = error instanceof KubeletError ? error.status : 500;
    inbound.stdout?.end();
    inbound.stderr?.end();
    inbound.sendStatus(failureStatus((error as Error).message, status));
    inbound.close();
    return;
  }
  await bridge(inbound, remote.remote, logger, bufferBytes, timer, remote.release);
}
