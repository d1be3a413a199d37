// The server side of a SPDY/3 connection, as Kubernetes clients (kubectl, the API server's stream
// translator) use it: the client opens every stream; the server answers each SYN_STREAM with a
// SYN_REPLY, echoes the client's PINGs, and sends no SETTINGS or WINDOW_UPDATE. Hostile or broken
// input ends the session with GOAWAY and never throws out of it.
//
// Flow control comes from the socket, because spdystream (every Kubernetes peer) ignores SPDY windows:
// when the streams' consumers fall behind by more than the receive budget, the session stops reading
// the socket, and TCP slows the peer down; a stream's writer is held back while the socket's send
// buffer is full. Closing is orderly: every stream's queued data is written before GOAWAY.
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { finished } from 'node:stream/promises';
import { EmptyHeaderBlocks, HeaderDecompressor } from './compression.ts';
import {
  dataFrameHeader,
  decodeHeaderBlock,
  encodeControlFrame,
  FLAG_FIN,
  type Frame,
  FrameParser,
  FrameType,
  GoawayStatus,
  goawayPayload,
  type HeaderMap,
  MAX_FRAME_LENGTH,
  ProtocolError,
  parsePing,
  parseRstStream,
  parseStreamIdAndBlock,
  parseSynStream,
  pingPayload,
  RstStatus,
  rstStreamPayload,
  synReplyPayload,
} from './frames.ts';

export interface SpdySessionOptions {
  /** Streams a client may have open at once. */
  readonly maxStreams?: number;
  /** Received bytes the streams' consumers have not taken yet, in all, before the socket is paused. */
  readonly receiveBufferBytes?: number;
  /** Bytes one stream holds to send before its writer is asked to wait (writable high-water mark). */
  readonly sendBufferBytes?: number;
}

export const DEFAULT_RECEIVE_BUFFER_BYTES = 512 * 1024;
const DEFAULT_SEND_BUFFER_BYTES = 256 * 1024;
/** Data for a stream id above any the client opened is garbage; small frames may cross a reset. */
const STRAY_DATA_LIMIT = 64 * 1024;

/**
 * One client-opened stream. Readable: what the client sends; writable: DATA frames back; end() sends
 * FIN. Whenever the consumer reads, the session is told, so that it reads the socket again as soon as
 * its consumers have taken enough.
 */
export class SpdyStream extends Duplex {
  readonly id: number;
  readonly headers: HeaderMap;
  private readonly session: SpdySession;
  private remoteEnded = false;
  private resetHappened = false;

  constructor(session: SpdySession, id: number, headers: HeaderMap, sendBufferBytes: number) {
    super({ allowHalfOpen: true, writableHighWaterMark: sendBufferBytes });
    this.session = session;
    this.id = id;
    this.headers = headers;
  }

  /** The first value of a header (names are lowercase on the wire: `streamtype`, `port`, `requestid`). */
  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()]?.[0];
  }

  get wasReset(): boolean {
    return this.resetHappened;
  }

  override _read(): void {
    this.session.checkReceiveBuffer();
  }

  // Every consumer takes data through read() (flowing mode and pipe() too): the place to notice that
  // the buffer went down. (_read alone is not enough: Node calls it again only after a push.)
  override read(size?: number): unknown {
    const chunk: unknown = super.read(size);
    if (this.session.isReceivePaused) this.session.checkReceiveBuffer();
    return chunk;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.resetHappened) {
      callback();
      return;
    }
    this.session.sendData(this.id, 0, chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.resetHappened) {
      callback();
      return;
    }
    this.session.sendData(this.id, FLAG_FIN, Buffer.alloc(0), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.session.forget(this.id);
    callback(error);
  }

  /** Abandons the stream: RST_STREAM(CANCEL) to the peer. */
  reset(status: number = RstStatus.CANCEL): void {
    if (this.resetHappened) return;
    this.resetHappened = true;
    this.session.sendControl(FrameType.RST_STREAM, 0, rstStreamPayload(this.id, status));
    this.push(null);
    this.destroy();
  }

  /** Called by the session. */
  receive(data: Buffer, fin: boolean): void {
    if (this.remoteEnded || this.destroyed) return;
    if (data.length > 0) this.push(data);
    if (fin) {
      this.remoteEnded = true;
      this.push(null);
    }
  }

  /** Called by the session when the peer resets the stream (or the connection is gone). */
  peerReset(): void {
    this.resetHappened = true;
    this.remoteEnded = true;
    this.push(null);
    this.destroy();
  }
}

type SessionEvents = {
  stream: [SpdyStream];
  close: [];
  /** The peer broke the protocol; the session is closed already. (Not 'error': nothing may throw.) */
  failure: [Error];
};

export class SpdySession extends EventEmitter<SessionEvents> {
  private readonly socket: Duplex;
  private readonly parser = new FrameParser({
    acceptData: (streamId, length) => streamId <= this.parser.lastSynStreamId || length <= STRAY_DATA_LIMIT,
  });
  private readonly decompressor = new HeaderDecompressor();
  private readonly replyHeaders = new EmptyHeaderBlocks();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly maxStreams: number;
  private readonly receiveBufferBytes: number;
  private readonly sendBufferBytes: number;
  /** Frames parsed and not yet handled: handled strictly in order; header (de)compression is asynchronous. */
  private readonly queue: Frame[] = [];
  private queueHead = 0;
  private queuedBytes = 0;
  private handling = false;
  private receivePaused = false;
  private readonly drainWaiters: ((error?: Error | null) => void)[] = [];
  private lastStreamId = 0;
  private closing = false;
  private closed = false;

  constructor(socket: Duplex, head: Buffer, options: SpdySessionOptions = {}) {
    super();
    this.socket = socket;
    this.maxStreams = options.maxStreams ?? 64;
    this.receiveBufferBytes = options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES;
    this.sendBufferBytes = options.sendBufferBytes ?? DEFAULT_SEND_BUFFER_BYTES;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('drain', () => this.flushDrainWaiters());
    socket.on('error', () => this.shutdown());
    socket.on('close', () => this.shutdown());
    // The peer finished sending: the session is over (SPDY has no half-closed connection).
    socket.on('end', () => {
      this.shutdown();
      socket.end();
    });
    if (head.length > 0) this.receive(head);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Received bytes not yet taken by the streams' consumers (queued frames included). */
  get bufferedReceived(): number {
    let total = this.queuedBytes;
    for (const stream of this.streams.values()) total += stream.readableLength;
    return total;
  }

  /** Everything received and held: what the consumers have not taken, and a partial frame. */
  get bufferedBytes(): number {
    return this.parser.pending + this.bufferedReceived;
  }

  /** Whether the session stopped reading its socket because its consumers are behind. */
  get isReceivePaused(): boolean {
    return this.receivePaused;
  }

  private receive(chunk: Buffer): void {
    if (this.closed || this.closing) return;
    let frames: Frame[];
    try {
      frames = this.parser.push(chunk);
    } catch (error) {
      this.fail(error);
      return;
    }
    for (const frame of frames) {
      this.queue.push(frame);
      if (frame.kind === 'data') this.queuedBytes += frame.data.length;
    }
    this.handleQueued();
    this.checkReceiveBuffer();
  }

  /** Pauses the socket while the consumers hold too much, and resumes it once they took enough. */
  checkReceiveBuffer(): void {
    if (this.closed) return;
    const over = this.bufferedReceived >= this.receiveBufferBytes;
    if (over && !this.receivePaused) {
      this.receivePaused = true;
      this.socket.pause();
    } else if (!over && this.receivePaused) {
      this.receivePaused = false;
      this.socket.resume();
    }
  }

  /** Handles queued frames in order, synchronously until one needs (asynchronous) header compression. */
  private handleQueued(): void {
    if (this.handling) return;
    this.handling = true;
    try {
      while (this.queueHead < this.queue.length && !this.closed) {
        const frame = this.queue[this.queueHead] as Frame;
        this.queue[this.queueHead++] = undefined as unknown as Frame;
        if (frame.kind === 'data') {
          this.queuedBytes -= frame.data.length;
          // Data for a stream we do not know (closed, reset) is dropped, as spdystream does.
          this.streams.get(frame.streamId)?.receive(frame.data, (frame.flags & FLAG_FIN) !== 0);
          continue;
        }
        const pending = this.handleControl(frame);
        if (pending) {
          pending.then(
            () => {
              this.handling = false;
              this.handleQueued();
              this.checkReceiveBuffer();
            },
            (error) => this.fail(error),
          );
          return;
        }
      }
      this.queue.length = 0;
      this.queueHead = 0;
    } catch (error) {
      this.fail(error);
    }
    this.handling = false;
  }

  private handleControl(frame: Frame & { kind: 'control' }): Promise<void> | undefined {
    switch (frame.type) {
      case FrameType.SYN_STREAM:
        return this.onSynStream(frame.payload, frame.flags);
      case FrameType.RST_STREAM: {
        const { streamId } = parseRstStream(frame.payload);
        this.streams.get(streamId)?.peerReset();
        return undefined;
      }
      case FrameType.PING: {
        const id = parsePing(frame.payload);
        // Client pings are odd; our own (which we never send) would be even.
        if (id % 2 === 1) this.sendControl(FrameType.PING, 0, pingPayload(id));
        return undefined;
      }
      case FrameType.GOAWAY:
        // The peer opens no more streams; those open finish their work, then the session ends.
        this.close();
        return undefined;
      case FrameType.HEADERS: {
        // Headers after the stream opened carry nothing Kubernetes uses, but must be decompressed to
        // keep the zlib context in step with the peer.
        const { headerBlock } = parseStreamIdAndBlock(frame.payload, 'HEADERS');
        return this.decompressor.decompress(headerBlock).then(() => undefined);
      }
      default:
        // SETTINGS, WINDOW_UPDATE and anything unknown: ignored (no flow control).
        return undefined;
    }
  }

  private async onSynStream(payload: Buffer, flags: number): Promise<void> {
    const { streamId, headerBlock } = parseSynStream(payload);
    const headers = decodeHeaderBlock(await this.decompressor.decompress(headerBlock));
    if (this.closed) return;
    if (streamId % 2 !== 1 || streamId <= this.lastStreamId) {
      throw new ProtocolError(`stream id ${streamId} is not a new client stream`);
    }
    this.lastStreamId = streamId;
    if (this.closing || this.streams.size >= this.maxStreams) {
      this.sendControl(FrameType.RST_STREAM, 0, rstStreamPayload(streamId, RstStatus.REFUSED_STREAM));
      return;
    }
    const stream = new SpdyStream(this, streamId, headers, this.sendBufferBytes);
    this.streams.set(streamId, stream);
    this.sendControl(FrameType.SYN_REPLY, 0, synReplyPayload(streamId, this.replyHeaders.next()));
    if ((flags & FLAG_FIN) !== 0) stream.receive(Buffer.alloc(0), true);
    this.emit('stream', stream);
  }

  sendControl(type: number, flags: number, payload: Buffer): void {
    this.write(encodeControlFrame(type, flags, payload));
  }

  /** Writes data as DATA frames (split at the protocol's maximum), calling back once the socket can take more. */
  sendData(streamId: number, flags: number, data: Buffer, callback: (error?: Error | null) => void): void {
    if (this.closed) {
      callback(new Error('SPDY session closed'));
      return;
    }
    let offset = 0;
    let ok = true;
    // Header and payload go out together (cork), the payload as it is: no copy per frame.
    this.socket.cork();
    do {
      const piece = data.subarray(offset, offset + MAX_FRAME_LENGTH);
      offset += piece.length;
      ok = this.write(dataFrameHeader(streamId, offset >= data.length ? flags : 0, piece.length));
      if (piece.length > 0) ok = this.write(piece);
    } while (offset < data.length);
    this.socket.uncork();
    // Backpressure: the stream's writer waits while the socket's buffer is full.
    if (ok) callback();
    else this.drainWaiters.push(callback);
  }

  private flushDrainWaiters(): void {
    for (const callback of this.drainWaiters.splice(0)) callback();
  }

  private write(bytes: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return true;
    return this.socket.write(bytes);
  }

  forget(streamId: number): void {
    this.streams.delete(streamId);
    // A stream that went away holds nothing any more.
    this.checkReceiveBuffer();
  }

  /**
   * Ends every stream we still write to and, once each has written what it holds (or the peer has
   * gone), says GOAWAY(OK) and closes the connection. Nothing queued is dropped.
   */
  close(): void {
    if (this.closed || this.closing) return;
    this.closing = true;
    const open = [...this.streams.values()];
    for (const stream of open) if (!stream.writableEnded && !stream.destroyed) stream.end();
    void Promise.all(open.map((stream) => finished(stream, { readable: false }).catch(() => {}))).then(() => {
      if (this.closed) return;
      this.write(encodeControlFrame(FrameType.GOAWAY, 0, goawayPayload(this.lastStreamId, GoawayStatus.OK)));
      this.socket.end();
      this.shutdown();
    });
  }

  private fail(error: unknown): void {
    if (this.closed) return;
    const status = error instanceof ProtocolError ? GoawayStatus.PROTOCOL_ERROR : GoawayStatus.INTERNAL_ERROR;
    this.write(encodeControlFrame(FrameType.GOAWAY, 0, goawayPayload(this.lastStreamId, status)));
    this.emit('failure', error instanceof Error ? error : new Error(String(error)));
    this.shutdown();
    // Let the GOAWAY out, but do not wait long for a peer that may not read.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.queueHead = 0;
    this.queuedBytes = 0;
    for (const stream of this.streams.values()) stream.peerReset();
    this.streams.clear();
    for (const callback of this.drainWaiters.splice(0)) callback(new Error('SPDY session closed'));
    this.decompressor.close();
    if (this.receivePaused) this.socket.resume();
    this.emit('close');
  }
}
