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

/** Turns chunks of bytes into whole frames, however the bytes were split. */
export class FrameParser {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly maxControlFrameLength: number;
  private readonly acceptData: FrameParserOptions['acceptData'];

  constructor(options: FrameParserOptions = {}) {
    this.maxControlFrameLength = options.maxControlFrameLength ?? 1024 * 1024;
    this.acceptData = options.acceptData;
  }

  /** Bytes received but not yet part of a whole frame. */
  get pending(): number {
    return this.buffered.length;
  }

  push(chunk: Buffer): Frame[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const frames: Frame[] = [];
    while (this.buffered.length >= HEADER_LENGTH) {
      const first = this.buffered.readUInt32BE(0);
      const flags = this.buffered[4] as number;
      const length = this.buffered.readUIntBE(5, 3);
      const isControl = (first & 0x80000000) !== 0;
      if (isControl) {
        const version = (first >>> 16) & 0x7fff;
        if (version !== SPDY_VERSION) throw new ProtocolError(`unsupported SPDY version ${version}`);
        if (length > this.maxControlFrameLength) {
          throw new ProtocolError(`control frame of ${length} bytes exceeds ${this.maxControlFrameLength}`);
        }
      } else if (this.acceptData && !this.acceptData(first & STREAM_ID_MASK, length)) {
        throw new ProtocolError(
          `DATA frame of ${length} bytes for stream ${first & STREAM_ID_MASK}, which was never opened`,
        );
      }
      if (this.buffered.length < HEADER_LENGTH + length) break;
      const body = this.buffered.subarray(HEADER_LENGTH, HEADER_LENGTH + length);
      this.buffered = this.buffered.subarray(HEADER_LENGTH + length);
      if (isControl) {
        frames.push({ kind: 'control', type: first & 0xffff, flags, payload: Buffer.from(body) });
      } else {
        frames.push({ kind: 'data', streamId: first & STREAM_ID_MASK, flags, data: Buffer.from(body) });
      }
    }
    return frames;
  }
}

function header(first: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_LENGTH) throw new RangeError(`frame payload of ${length} bytes is too large`);
  const bytes = Buffer.alloc(HEADER_LENGTH);
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
  return Buffer.concat([header(streamId & STREAM_ID_MASK, flags, data.length), data]);
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
  const headers: HeaderMap = {};
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
