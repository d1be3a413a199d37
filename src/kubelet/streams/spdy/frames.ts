// SPDY/3 frames as Kubernetes speaks them (moby/spdystream): version 3 control frames and data frames,
// parsed incrementally from a byte stream and serialized. Pure: no sockets, no compression here.
//
//   control: 1 bit C=1 | 15 bits version=3 | 16 bits type | 8 bits flags | 24 bits length | payload
//   data:    1 bit C=0 | 31 bits stream id              | 8 bits flags | 24 bits length | data

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
} as const;

export const GoawayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

const HEADER_LENGTH = 8;
/** The largest payload a 24-bit length can describe. */
export const MAX_FRAME_LENGTH = 0xffffff;
const STREAM_ID_MASK = 0x7fffffff;

export type Frame =
  | { readonly kind: 'data'; readonly streamId: number; readonly flags: number; readonly data: Buffer }
  | { readonly kind: 'control'; readonly type: number; readonly flags: number; readonly payload: Buffer };

/** A peer that breaks the protocol: the session answers with GOAWAY(PROTOCOL_ERROR) and closes. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

export interface FrameParserOptions {
  /** Largest control-frame payload accepted (header blocks are small; a huge one is hostile). */
  readonly maxControlFrameLength?: number;
  /**
   * Whether a DATA frame header is plausible, judged before its payload arrives: a peer announcing
   * megabytes for a stream that was never opened is failed at once instead of being waited for.
   */
  readonly acceptData?: (streamId: number, length: number) => boolean;
}

/** The control frames' default size limit: Kubernetes' header blocks are a few hundred bytes. */
export const DEFAULT_MAX_CONTROL_FRAME_LENGTH = 256 * 1024;

/**
 * Turns chunks of bytes into frames, however the bytes were split. A DATA frame's payload is handed
 * on as it arrives, in pieces (FIN on the last one), never held until the whole frame is in: a frame
 * may announce 16 MiB, and what the parser holds stays bounded by one control frame.
 */
export class FrameParser {
  private buffered: Buffer = Buffer.alloc(0);
  /** The DATA frame whose payload is being received, and how much of it is still to come. */
  private data: { streamId: number; flags: number; remaining: number } | undefined;
  private readonly maxControlFrameLength: number;
  private readonly acceptData: FrameParserOptions['acceptData'];
  private lastSynStream = 0;

  constructor(options: FrameParserOptions = {}) {
    this.maxControlFrameLength = options.maxControlFrameLength ?? DEFAULT_MAX_CONTROL_FRAME_LENGTH;
    this.acceptData = options.acceptData;
  }

  /**
   * The highest stream id a SYN_STREAM parsed so far opened: known as soon as its bytes are in, while
   * the session is still decompressing its headers, so data right behind it is not taken for garbage.
   */
  get lastSynStreamId(): number {
    return this.lastSynStream;
  }

  /** Bytes received but not yet handed on (at most a frame header or one control frame). */
  get pending(): number {
    return this.buffered.length;
  }

  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    let input = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    this.buffered = Buffer.alloc(0);
    for (;;) {
      if (this.data) {
        const { streamId, flags, remaining } = this.data;
        const take = Math.min(remaining, input.length);
        if (take === 0 && remaining > 0) break;
        const last = take === remaining;
        frames.push({ kind: 'data', streamId, flags: last ? flags : 0, data: input.subarray(0, take) });
        input = input.subarray(take);
        if (!last) {
          this.data.remaining -= take;
          break;
        }
        this.data = undefined;
        continue;
      }
      if (input.length < HEADER_LENGTH) break;
      const first = input.readUInt32BE(0);
      const flags = input[4] as number;
      const length = input.readUIntBE(5, 3);
      if ((first & 0x80000000) === 0) {
        const streamId = first & STREAM_ID_MASK;
        if (this.acceptData && !this.acceptData(streamId, length)) {
          throw new ProtocolError(
            `DATA frame of ${length} bytes for stream ${streamId}, which was never opened`,
          );
        }
        this.data = { streamId, flags, remaining: length };
        input = input.subarray(HEADER_LENGTH);
        continue;
      }
      const version = (first >>> 16) & 0x7fff;
      if (version !== SPDY_VERSION) throw new ProtocolError(`unsupported SPDY version ${version}`);
      if (length > this.maxControlFrameLength) {
        throw new ProtocolError(`control frame of ${length} bytes exceeds ${this.maxControlFrameLength}`);
      }
      if (input.length < HEADER_LENGTH + length) break;
      const payload = Buffer.from(input.subarray(HEADER_LENGTH, HEADER_LENGTH + length));
      const type = first & 0xffff;
      if (type === FrameType.SYN_STREAM && payload.length >= 4) {
        this.lastSynStream = Math.max(this.lastSynStream, payload.readUInt32BE(0) & STREAM_ID_MASK);
      }
      frames.push({ kind: 'control', type, flags, payload });
      input = input.subarray(HEADER_LENGTH + length);
    }
    // What is kept is a partial header or control frame: copied, so the chunk it came in is not retained.
    if (input.length > 0) this.buffered = Buffer.from(input);
    return frames;
  }
}

function header(first: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_LENGTH) throw new RangeError(`frame payload of ${length} bytes is too large`);
  // Small enough to come from Node's shared pool: no allocation of its own per frame.
  const bytes = Buffer.allocUnsafe(HEADER_LENGTH);
  bytes.writeUInt32BE(first >>> 0, 0);
  bytes[4] = flags;
  bytes.writeUIntBE(length, 5, 3);
  return bytes;
}

export function encodeControlFrame(type: number, flags: number, payload: Buffer): Buffer {
  return Buffer.concat([
    header((0x80000000 | (SPDY_VERSION << 16) | type) >>> 0, flags, payload.length),
    payload,
  ]);
}

export function encodeDataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  return Buffer.concat([dataFrameHeader(streamId, flags, data.length), data]);
}

/** The 8 bytes in front of a DATA frame's payload, for writing the payload without copying it. */
export function dataFrameHeader(streamId: number, flags: number, length: number): Buffer {
  return header(streamId & STREAM_ID_MASK, flags, length);
}

function uint32(...values: number[]): Buffer {
  const bytes = Buffer.alloc(values.length * 4);
  for (const [i, value] of values.entries()) bytes.writeUInt32BE(value >>> 0, i * 4);
  return bytes;
}

export function synStreamPayload(streamId: number, associatedId: number, headerBlock: Buffer): Buffer {
  return Buffer.concat([
    uint32(streamId & STREAM_ID_MASK, associatedId & STREAM_ID_MASK),
    Buffer.from([0, 0]),
    headerBlock,
  ]);
}

export function synReplyPayload(streamId: number, headerBlock: Buffer): Buffer {
  return Buffer.concat([uint32(streamId & STREAM_ID_MASK), headerBlock]);
}

export function rstStreamPayload(streamId: number, status: number): Buffer {
  return uint32(streamId & STREAM_ID_MASK, status);
}

export function pingPayload(id: number): Buffer {
  return uint32(id);
}

export function goawayPayload(lastGoodStreamId: number, status: number): Buffer {
  return uint32(lastGoodStreamId & STREAM_ID_MASK, status);
}

function need(payload: Buffer, bytes: number, what: string): void {
  if (payload.length < bytes) throw new ProtocolError(`${what} frame too short (${payload.length} bytes)`);
}

export function parseSynStream(payload: Buffer): {
  streamId: number;
  associatedId: number;
  headerBlock: Buffer;
} {
  need(payload, 10, 'SYN_STREAM');
  return {
    streamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
    associatedId: payload.readUInt32BE(4) & STREAM_ID_MASK,
    headerBlock: payload.subarray(10),
  };
}

export function parseStreamIdAndBlock(
  payload: Buffer,
  what: string,
): { streamId: number; headerBlock: Buffer } {
  need(payload, 4, what);
  return { streamId: payload.readUInt32BE(0) & STREAM_ID_MASK, headerBlock: payload.subarray(4) };
}

export function parseRstStream(payload: Buffer): { streamId: number; status: number } {
  need(payload, 8, 'RST_STREAM');
  return { streamId: payload.readUInt32BE(0) & STREAM_ID_MASK, status: payload.readUInt32BE(4) };
}

export function parsePing(payload: Buffer): number {
  need(payload, 4, 'PING');
  return payload.readUInt32BE(0);
}

export function parseGoaway(payload: Buffer): { lastGoodStreamId: number; status: number } {
  need(payload, 8, 'GOAWAY');
  return { lastGoodStreamId: payload.readUInt32BE(0) & STREAM_ID_MASK, status: payload.readUInt32BE(4) };
}

/** Header names are lowercase on the wire; several values of one name are joined with NUL. */
export type HeaderMap = Record<string, string[]>;

export function encodeHeaderBlock(headers: HeaderMap): Buffer {
  const parts: Buffer[] = [uint32(Object.keys(headers).length)];
  for (const [name, values] of Object.entries(headers)) {
    const nameBytes = Buffer.from(name.toLowerCase(), 'utf8');
    const valueBytes = Buffer.from(values.join('\0'), 'utf8');
    parts.push(uint32(nameBytes.length), nameBytes, uint32(valueBytes.length), valueBytes);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer, maxHeaders = 256): HeaderMap {
  need(block, 4, 'header block');
  const count = block.readUInt32BE(0);
  if (count > maxHeaders)
    throw new ProtocolError(`header block declares ${count} headers (at most ${maxHeaders})`);
  // No prototype: a header named "constructor" or "__proto__" is just a header.
  const headers: HeaderMap = Object.create(null);
  let offset = 4;
  const read = (): string => {
    if (offset + 4 > block.length) throw new ProtocolError('header block truncated');
    const length = block.readUInt32BE(offset);
    offset += 4;
    if (offset + length > block.length) throw new ProtocolError('header block truncated');
    const text = block.toString('utf8', offset, offset + length);
    offset += length;
    return text;
  };
  for (let i = 0; i < count; i++) {
    const name = read();
    const value = read();
    if (name.length === 0) throw new ProtocolError('empty header name');
    if (name !== name.toLowerCase()) throw new ProtocolError(`header name "${name}" is not lowercase`);
    headers[name] = [...(headers[name] ?? []), ...value.split('\0')];
  }
  return headers;
}
