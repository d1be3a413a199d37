// The server side of a SPDY/3 connection, as Kubernetes clients (kubectl, the API server's stream
// translator) use it: the client opens every stream; the server answers each SYN_STREAM with a
// SYN_REPLY, echoes the client's PINGs, and sends no SETTINGS or WINDOW_UPDATE (spdystream has no flow
// control, and a peer that waits for window updates would stall). Hostile or broken input ends the
// session with GOAWAY and never throws out of it.
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { HeaderCompressor, HeaderDecompressor } from './compression.ts';
import {
  decodeHeaderBlock,
  encodeControlFrame,
  encodeDataFrame,
  encodeHeaderBlock,
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
}

/** One client-opened stream. Readable: what the client sends; writable: DATA frames back; end() sends FIN. */
export class SpdyStream extends Duplex {
  readonly id: number;
  readonly headers: HeaderMap;
  private readonly session: SpdySession;
  private remoteEnded = false;
  private resetHappened = false;

  constructor(session: SpdySession, id: number, headers: HeaderMap) {
    super({ allowHalfOpen: true });
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
    // Data is pushed as frames arrive; there is no flow control to tell the peer to slow down.
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
    if (this.remoteEnded) return;
    if (data.length > 0) this.push(data);
    if (fin) {
      this.remoteEnded = true;
      this.push(null);
    }
  }

  /** Called by the session when the peer resets the stream. */
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
  // Data for a stream id above any the client opened is garbage; small frames for closed streams are not
  // (they can cross a reset in flight) and are dropped.
  private readonly parser = new FrameParser({
    acceptData: (streamId, length) => streamId <= this.lastStreamId || length <= 64 * 1024,
  });
  private readonly decompressor = new HeaderDecompressor();
  private readonly compressor = new HeaderCompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly maxStreams: number;
  /** Frames are handled strictly in order; header (de)compression is asynchronous. */
  private processing: Promise<void> = Promise.resolve();
  private lastStreamId = 0;
  private closed = false;

  constructor(socket: Duplex, head: Buffer, options: SpdySessionOptions = {}) {
    super();
    this.socket = socket;
    this.maxStreams = options.maxStreams ?? 64;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
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

  private receive(chunk: Buffer): void {
    if (this.closed) return;
    let frames: Frame[];
    try {
      frames = this.parser.push(chunk);
    } catch (error) {
      this.fail(error);
      return;
    }
    for (const frame of frames) {
      this.processing = this.processing
        .then(() => (this.closed ? undefined : this.handle(frame)))
        .catch((error) => this.fail(error));
    }
  }

  private async handle(frame: Frame): Promise<void> {
    if (frame.kind === 'data') {
      const stream = this.streams.get(frame.streamId);
      // Data for a stream we do not know (closed, reset, never opened) is dropped, as spdystream does.
      stream?.receive(frame.data, (frame.flags & FLAG_FIN) !== 0);
      return;
    }
    switch (frame.type) {
      case FrameType.SYN_STREAM:
        return this.onSynStream(frame.payload, frame.flags);
      case FrameType.RST_STREAM: {
        const { streamId } = parseRstStream(frame.payload);
        this.streams.get(streamId)?.peerReset();
        return;
      }
      case FrameType.PING: {
        const id = parsePing(frame.payload);
        // Client pings are odd; our own (which we never send) would be even.
        if (id % 2 === 1) this.sendControl(FrameType.PING, 0, pingPayload(id));
        return;
      }
      case FrameType.GOAWAY:
        this.close();
        return;
      case FrameType.HEADERS: {
        // Headers after the stream opened carry nothing Kubernetes uses, but must be decompressed to
        // keep the zlib context in step with the peer.
        const { headerBlock } = parseStreamIdAndBlock(frame.payload, 'HEADERS');
        await this.decompressor.decompress(headerBlock);
        return;
      }
      default:
        // SETTINGS, WINDOW_UPDATE and anything unknown: ignored (no flow control).
        return;
    }
  }

  private async onSynStream(payload: Buffer, flags: number): Promise<void> {
    const { streamId, headerBlock } = parseSynStream(payload);
    const headers = decodeHeaderBlock(await this.decompressor.decompress(headerBlock));
    if (streamId % 2 !== 1 || streamId <= this.lastStreamId) {
      throw new ProtocolError(`stream id ${streamId} is not a new client stream`);
    }
    this.lastStreamId = streamId;
    if (this.streams.size >= this.maxStreams) {
      this.sendControl(FrameType.RST_STREAM, 0, rstStreamPayload(streamId, RstStatus.REFUSED_STREAM));
      return;
    }
    const stream = new SpdyStream(this, streamId, headers);
    this.streams.set(streamId, stream);
    await this.reply(streamId);
    if ((flags & FLAG_FIN) !== 0) stream.receive(Buffer.alloc(0), true);
    this.emit('stream', stream);
  }

  private async reply(streamId: number): Promise<void> {
    const block = await this.compressor.compress(encodeHeaderBlock({}));
    this.sendControl(FrameType.SYN_REPLY, 0, synReplyPayload(streamId, block));
  }

  sendControl(type: number, flags: number, payload: Buffer): void {
    this.write(encodeControlFrame(type, flags, payload));
  }

  /** Writes data as DATA frames (split at the protocol's maximum), calling back when the socket took it. */
  sendData(streamId: number, flags: number, data: Buffer, callback: (error?: Error | null) => void): void {
    if (this.closed) {
      callback(new Error('SPDY session closed'));
      return;
    }
    let offset = 0;
    do {
      const piece = data.subarray(offset, offset + MAX_FRAME_LENGTH);
      offset += piece.length;
      const last = offset >= data.length;
      const ok = this.write(encodeDataFrame(streamId, last ? flags : 0, piece));
      if (last) {
        // Backpressure: the stream's writer waits while the socket's buffer is full.
        if (ok) callback();
        else this.socket.once('drain', () => callback());
      }
    } while (offset < data.length);
  }

  private write(bytes: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return true;
    return this.socket.write(bytes);
  }

  forget(streamId: number): void {
    this.streams.delete(streamId);
  }

  /** Ends every stream we still write to, says GOAWAY(OK) and closes the connection. */
  close(): void {
    if (this.closed) return;
    for (const stream of this.streams.values()) if (!stream.writableEnded) stream.end();
    // Let the FINs above be written before the GOAWAY.
    setImmediate(() => {
      this.write(encodeControlFrame(FrameType.GOAWAY, 0, goawayPayload(this.lastStreamId, GoawayStatus.OK)));
      this.shutdown();
      this.socket.end();
    });
  }

  private fail(error: unknown): void {
    if (this.closed) return;
    const status = error instanceof ProtocolError ? GoawayStatus.PROTOCOL_ERROR : GoawayStatus.INTERNAL_ERROR;
    this.write(encodeControlFrame(FrameType.GOAWAY, 0, goawayPayload(this.lastStreamId, status)));
    this.emit('failure', error instanceof Error ? error : new Error(String(error)));
    this.shutdown();
    this.socket.destroy();
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    for (const stream of this.streams.values()) stream.peerReset();
    this.streams.clear();
    this.decompressor.close();
    this.compressor.close();
    this.emit('close');
  }
}
