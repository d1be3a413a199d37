// Backpressure between the two sides of a stream session. Data flows from a source that can be
// paused (a WebSocket, a SPDY stream, a socket) into sinks (Writables); a sink that is full pauses its
// source until it drains, so a slow side slows the fast one down instead of filling memory, and
// nothing is dropped on the way.
import { Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { streamPauses } from '../telemetry.ts';
import type { ChannelCodec } from './channel.ts';

export interface Pausable {
  pause(): unknown;
  resume(): unknown;
}

export type Direction = 'to_client' | 'to_remote';

/**
 * Writes what one source produces into its sinks, pausing the source while any sink is over its
 * high-water mark. A sink that is gone (destroyed, ended) takes nothing and holds nothing back.
 */
export class Valve {
  private readonly source: Pausable;
  private readonly direction: Direction;
  private readonly full = new Set<Writable>();

  constructor(source: Pausable, direction: Direction) {
    this.source = source;
    this.direction = direction;
  }

  get paused(): boolean {
    return this.full.size > 0;
  }

  /** Writes `chunk` to `sink`; returns false when the sink was gone and the chunk went nowhere. */
  write(sink: Writable, chunk: Buffer): boolean {
    if (sink.destroyed || sink.writableEnded) return false;
    if (sink.write(chunk) || this.full.has(sink)) return true;
    this.full.add(sink);
    if (this.full.size === 1) {
      streamPauses.inc({ direction: this.direction });
      this.source.pause();
    }
    const release = () => {
      sink.off('drain', release);
      sink.off('close', release);
      if (!this.full.delete(sink)) return;
      if (this.full.size === 0) this.source.resume();
    };
    sink.on('drain', release);
    sink.on('close', release);
    return true;
  }
}

export interface ChannelWriterOptions {
  /** Bytes the WebSocket may hold unsent before a write waits for the socket. */
  readonly highWaterMark: number;
  /** Sent once, when the writer ends (v5 CLOSE of the channel, for stdin's EOF). */
  readonly onEnd?: () => Buffer | string | undefined;
}

/**
 * A Writable sending everything written as messages of one channel of a WebSocket. A write completes
 * at once while the WebSocket's send buffer is below the high-water mark, else when the socket took
 * the message: so whoever pipes into it (or a Valve) is held back by the socket, not by memory.
 */
export class WebSocketChannelWriter extends Writable {
  private readonly ws: WebSocket;
  private readonly codec: ChannelCodec;
  private readonly channel: number;
  private readonly limit: number;
  private readonly onEnd: ChannelWriterOptions['onEnd'];

  constructor(ws: WebSocket, codec: ChannelCodec, channel: number, options: ChannelWriterOptions) {
    super({ highWaterMark: options.highWaterMark, decodeStrings: true });
    this.ws = ws;
    this.codec = codec;
    this.channel = channel;
    this.limit = options.highWaterMark;
    this.onEnd = options.onEnd;
    // A write fails only once the WebSocket is closed, which ends the session on its own.
    this.on('error', () => {});
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.send(this.codec.encode(this.channel, chunk), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const last = this.onEnd?.();
    if (last === undefined) callback();
    else this.send(last, callback);
  }

  private send(message: Buffer | string, callback: (error?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      callback(new Error('the WebSocket is closed'));
      return;
    }
    let called = false;
    const done = (error?: Error | null) => {
      if (called) return;
      called = true;
      callback(error);
    };
    this.ws.send(message, (error) => done(error));
    if (this.ws.bufferedAmount < this.limit) done();
  }
}
