// exec and attach, whatever the inbound protocol (SPDY or a WebSocket channel protocol): one
// WebSocket v5.channel.k8s.io connection to the remote API server, and a bridge that carries stdin
// (with EOF), stdout, stderr, terminal resizes and the final status (exit code) between the two.
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Logger } from 'pino';
import type WebSocket from 'ws';
import type { KubeStatus } from '../kube/errors.ts';
import { badRequest } from './http-errors.ts';
import { holdEvents, openRemoteWebSocket, type RemoteWebSocketOptions } from './remote-ws.ts';
import type { ResolvedPod } from './resolve.ts';
import {
  CHANNEL_CLOSE,
  CHANNEL_ERROR,
  CHANNEL_RESIZE,
  CHANNEL_STDERR,
  CHANNEL_STDIN,
  CHANNEL_STDOUT,
  channelCodec,
} from './streams/channel.ts';
import { Valve, WebSocketChannelWriter } from './streams/flow.ts';
import type { PhaseTimer } from './timing.ts';

/** A session's buffer when none is configured (kubelet.streamBufferBytes). */
export const DEFAULT_BUFFER_BYTES = 1024 * 1024;

export interface CommandOptions {
  readonly kind: 'exec' | 'attach';
  readonly container: string;
  readonly command: readonly string[];
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
}

function truthy(value: string | null): boolean {
  return value === '1' || value === 'true';
}

/** The kubelet's parameters (input/output/error/tty, repeated command), validated as the kubelet does. */
export function commandOptions(
  kind: 'exec' | 'attach',
  container: string,
  query: URLSearchParams,
): CommandOptions {
  const tty = truthy(query.get('tty'));
  const options: CommandOptions = {
    kind,
    container,
    command: query.getAll('command'),
    stdin: truthy(query.get('input')),
    stdout: truthy(query.get('output')),
    // With a terminal, stderr is merged into stdout (and silently dropped as a separate stream).
    stderr: truthy(query.get('error')) && !tty,
    tty,
  };
  if (!options.stdin && !options.stdout && !options.stderr) {
    throw badRequest('you must specify at least 1 of stdin, stdout, stderr');
  }
  if (kind === 'exec' && options.command.length === 0) throw badRequest('you must specify a command');
  return options;
}

export interface TerminalSize {
  readonly Width: number;
  readonly Height: number;
}

/**
 * Terminal sizes from the client. A client sends its first size as soon as the session opens, before
 * the remote side exists: the latest size is kept until someone listens.
 */
export class ResizeQueue {
  private listener: ((size: TerminalSize) => void) | undefined;
  private latest: TerminalSize | undefined;

  push(size: TerminalSize): void {
    if (this.listener) this.listener(size);
    else this.latest = size;
  }

  onResize(listener: (size: TerminalSize) => void): void {
    this.listener = listener;
    if (this.latest) listener(this.latest);
    this.latest = undefined;
  }
}

/** The client's side of a session, in whatever protocol it speaks. */
export interface InboundStreams {
  readonly stdin?: Readable;
  readonly stdout?: Writable;
  readonly stderr?: Writable;
  readonly resize?: ResizeQueue;
  /** Reports the outcome on the error stream/channel (a metav1.Status, or text for old protocols). */
  sendStatus(status: KubeStatus): void;
  /** Ends the client's session (after the status). */
  close(): void;
  /** Called once when the client goes away. */
  onGone(listener: () => void): void;
}

export function failureStatus(message: string, code = 500): KubeStatus {
  return {
    kind: 'Status',
    status: 'Failure',
    message,
    reason: code >= 500 ? 'InternalError' : 'BadRequest',
    code,
  };
}

const SUCCESS: KubeStatus = { kind: 'Status', status: 'Success' };

/**
 * Some remote kubelets (kwok, for one) report a command's non-zero exit only as the text of an internal
 * error, "... exit status 3", which would make kubectl exit with 1. That text is turned into the
 * standard NonZeroExitCode status a kubelet sends, so the exit code reaches the user. Every other
 * status passes through unchanged.
 */
export function normalizeExitStatus(status: KubeStatus): KubeStatus {
  if (status.status !== 'Failure' || status.reason !== 'InternalError') return status;
  const code = /exit status (\d{1,3})\s*$/.exec(status.message ?? '')?.[1];
  if (code === undefined || Number(code) > 255) return status;
  return {
    kind: 'Status',
    status: 'Failure',
    message: `command terminated with non-zero exit code: exit status ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: code }] },
  };
}

export function openRemoteCommand(
  target: ResolvedPod,
  options: CommandOptions,
  remoteOptions: RemoteWebSocketOptions = {},
): Promise<WebSocket> {
  const query = new URLSearchParams({ container: options.container });
  for (const part of options.command) query.append('command', part);
  for (const name of ['stdin', 'stdout', 'stderr', 'tty'] as const)
    if (options[name]) query.set(name, 'true');
  const path = `/api/v1/namespaces/${target.delegateNamespace}/pods/${target.delegateName}/${options.kind}`;
  return openRemoteWebSocket(target.remote.client, path, query, ['v5.channel.k8s.io'], remoteOptions);
}

/** Closes a remote session politely, and for good a few seconds later if it does not answer. */
function closeRemote(remote: WebSocket): void {
  if (remote.readyState === remote.OPEN || remote.readyState === remote.CONNECTING) remote.close(1000);
  setTimeout(() => remote.terminate(), 5000).unref();
}

/** A remote session opening while the client's side is still being set up. */
export interface PendingRemote {
  /** The open WebSocket, its events held until {@link bridge} takes them; or why it did not open. */
  readonly ready: Promise<{ remote: WebSocket; release: () => void }>;
  /** The client went away first: the remote session is given up (connecting or open). */
  abandon(): void;
}

/**
 * Starts the remote session at once, so that connecting to the remote API server (TLS, upgrade, its
 * own session to the node) overlaps with the client's upgrade and stream setup instead of following it.
 * The remote command may thus start a few milliseconds before the client's streams exist: what it
 * writes waits in the remote's socket (the WebSocket is paused), nothing is lost.
 */
export function startRemoteCommand(
  target: ResolvedPod,
  options: CommandOptions,
  timer?: PhaseTimer,
): PendingRemote {
  const controller = new AbortController();
  let opened: WebSocket | undefined;
  const ready = openRemoteCommand(target, options, { signal: controller.signal, timer }).then((remote) => {
    opened = remote;
    // Listeners come before the first message can be emitted (ws defers events to setImmediate).
    return { remote, release: holdEvents(remote) };
  });
  ready.catch(() => {});
  return {
    ready,
    abandon: () => {
      controller.abort();
      if (opened) closeRemote(opened);
    },
  };
}

/** What one session may hold for the slower side; see streams/flow.ts. */
export interface SessionContext {
  readonly target: ResolvedPod;
  readonly logger: Logger;
  /** Bytes a session may buffer in all (half per direction) before it stops reading the faster side. */
  readonly bufferBytes: number;
  /** Where the session's time goes (logged at debug level when it ends). */
  readonly timer?: PhaseTimer;
}

/**
 * Carries one session between the client and the remote until either side ends. Output is written to
 * the client as fast as it reads it (the remote WebSocket is paused meanwhile); stdin goes to the
 * remote as fast as its socket takes it. The remote's status (exit code) is the last thing it sends:
 * once it is in, everything sent before it is delivered, then the status, and the session ends (the
 * remote's close handshake finishes on its own). Never throws. `release` hands over the events
 * {@link startRemoteCommand} held.
 */
export function bridge(
  inbound: InboundStreams,
  remote: WebSocket,
  logger: Logger,
  bufferBytes = DEFAULT_BUFFER_BYTES,
  timer?: PhaseTimer,
  release?: () => void,
): Promise<void> {
  const codec = channelCodec('v5.channel.k8s.io');
  const toClient = new Valve(remote, 'to_client');
  let status: KubeStatus | undefined;
  let done = false;
  return new Promise((resolve) => {
    const finish = async (clientGone: boolean) => {
      if (done) return;
      done = true;
      if (!clientGone) {
        const outputs = [inbound.stdout, inbound.stderr].filter((s): s is Writable => s !== undefined);
        for (const output of outputs) output.end();
        // Everything the remote sent reaches the client before the status (or the client leaves).
        await Promise.all(outputs.map((output) => finished(output, { readable: false }).catch(() => {})));
        inbound.sendStatus(status ?? SUCCESS);
      }
      inbound.close();
      timer?.mark('done');
      if (timer) logger.debug({ phases: timer }, 'session timings');
      resolve();
    };
    let first = true;
    remote.on('message', (message: Buffer) => {
      if (first) {
        first = false;
        timer?.mark('remote-first-message');
      }
      const decoded = codec.decode(message);
      if (!decoded) return;
      if ('close' in decoded) {
        if (decoded.close === CHANNEL_STDOUT) inbound.stdout?.end();
        if (decoded.close === CHANNEL_STDERR) inbound.stderr?.end();
        return;
      }
      if (decoded.data.length === 0) return;
      if (done && decoded.channel !== CHANNEL_ERROR) {
        logger.debug({ channel: decoded.channel }, 'remote sent output after its status: not delivered');
        return;
      }
      if (decoded.channel === CHANNEL_STDOUT && inbound.stdout) toClient.write(inbound.stdout, decoded.data);
      else if (decoded.channel === CHANNEL_STDERR && inbound.stderr)
        toClient.write(inbound.stderr, decoded.data);
      else if (decoded.channel === CHANNEL_ERROR && !done) {
        try {
          status = normalizeExitStatus(JSON.parse(decoded.data.toString()) as KubeStatus);
        } catch {
          status = failureStatus(decoded.data.toString());
        }
        timer?.mark('remote-status');
        closeRemote(remote);
        void finish(false);
      }
    });
    remote.on('close', (code, reason) => {
      timer?.mark('remote-closed');
      if (!status && code !== 1000)
        status = failureStatus(`remote stream closed (${code} ${reason.toString()})`);
      void finish(false);
    });
    remote.on('error', (error) => {
      status ??= failureStatus(`remote stream failed: ${error.message}`);
      logger.debug({ err: error.message }, 'remote command stream failed');
    });

    if (inbound.stdin) {
      // pipe() holds the client back while the remote's socket is full; stdin's end becomes a CLOSE.
      const toRemote = new WebSocketChannelWriter(remote, codec, CHANNEL_STDIN, {
        highWaterMark: bufferBytes / 2,
        onEnd: () => Buffer.from([CHANNEL_CLOSE, CHANNEL_STDIN]),
      });
      inbound.stdin.on('error', () => {});
      inbound.stdin.pipe(toRemote);
    }
    inbound.resize?.onResize((size) => {
      if (remote.readyState === remote.OPEN) {
        remote.send(
          codec.encode(
            CHANNEL_RESIZE,
            Buffer.from(JSON.stringify({ Width: size.Width, Height: size.Height })),
          ),
        );
      }
    });
    inbound.onGone(() => {
      // The client left: end the remote session too (for a terminal, the remote shell sees a hangup).
      closeRemote(remote);
      void finish(true);
    });
    release?.();
  });
}
