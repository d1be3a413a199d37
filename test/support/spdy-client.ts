// A minimal SPDY/3 client for unit tests of the server session: it speaks through the same frame
// codec and header compression, over an in-memory duplex.
import type { Duplex } from 'node:stream';
import { HeaderCompressor, HeaderDecompressor } from '../../src/kubelet/streams/spdy/compression.ts';
import {
  decodeHeaderBlock,
  encodeControlFrame,
  encodeDataFrame,
  encodeHeaderBlock,
  type Frame,
  FrameParser,
  FrameType,
  type HeaderMap,
  parseStreamIdAndBlock,
  synStreamPayload,
} from '../../src/kubelet/streams/spdy/frames.ts';

export class TestSpdyClient {
  readonly frames: Frame[] = [];
  readonly replies = new Map<number, HeaderMap>();
  private readonly socket: Duplex;
  private readonly parser = new FrameParser();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private nextStreamId = 1;
  private chain: Promise<void> = Promise.resolve();
  closed = false;
  /** The server ended the connection (FIN). */
  ended = false;

  constructor(socket: Duplex) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const frame of this.parser.push(chunk)) {
        this.chain = this.chain.then(async () => {
          if (frame.kind === 'control' && frame.type === FrameType.SYN_REPLY) {
            const { streamId, headerBlock } = parseStreamIdAndBlock(frame.payload, 'SYN_REPLY');
            this.replies.set(streamId, decodeHeaderBlock(await this.decompressor.decompress(headerBlock)));
          }
          this.frames.push(frame);
        });
      }
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', () => {});
  }

  async open(headers: Record<string, string>, flags = 0): Promise<number> {
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const block = await this.compressor.compress(
      encodeHeaderBlock(Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]))),
    );
    this.socket.write(encodeControlFrame(FrameType.SYN_STREAM, flags, synStreamPayload(id, 0, block)));
    return id;
  }

  send(streamId: number, data: Buffer | string, flags = 0): void {
    this.socket.write(encodeDataFrame(streamId, flags, Buffer.from(data)));
  }

  control(type: number, flags: number, payload: Buffer): void {
    this.socket.write(encodeControlFrame(type, flags, payload));
  }

  raw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Data received on a stream so far, and whether it was finished. */
  received(streamId: number): { data: string; fin: boolean } {
    let data = '';
    let fin = false;
    for (const frame of this.frames) {
      if (frame.kind === 'data' && frame.streamId === streamId) {
        data += frame.data.toString();
        if (frame.flags & 1) fin = true;
      }
    }
    return { data, fin };
  }

  controlFrames(type: number): Frame[] {
    return this.frames.filter((f) => f.kind === 'control' && f.type === type);
  }
}
