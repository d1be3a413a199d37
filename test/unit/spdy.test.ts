import { duplexPair } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { EmptyHeaderBlocks, HeaderDecompressor } from '../../src/kubelet/streams/spdy/compression.ts';
import { SPDY3_DICTIONARY } from '../../src/kubelet/streams/spdy/dictionary.ts';
import {
  decodeHeaderBlock,
  encodeControlFrame,
  encodeDataFrame,
  encodeHeaderBlock,
  FLAG_FIN,
  FrameParser,
  FrameType,
  GoawayStatus,
  ProtocolError,
  parseGoaway,
  parseRstStream,
  pingPayload,
  RstStatus,
  rstStreamPayload,
  synStreamPayload,
} from '../../src/kubelet/streams/spdy/frames.ts';
import { SpdySession, type SpdyStream } from '../../src/kubelet/streams/spdy/session.ts';
import { TestSpdyClient } from '../support/spdy-client.ts';

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(2);
  }
}

function setup(maxStreams?: number) {
  const [serverSide, clientSide] = duplexPair();
  const session = new SpdySession(serverSide, Buffer.alloc(0), maxStreams ? { maxStreams } : {});
  const streams: SpdyStream[] = [];
  const failures: Error[] = [];
  session.on('stream', (stream) => streams.push(stream));
  session.on('failure', (error) => failures.push(error));
  const client = new TestSpdyClient(clientSide);
  return { session, streams, failures, client, serverSide, clientSide };
}

describe('SPDY/3 frames', () => {
  it('uses the 1423-byte SPDY/3 dictionary', () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(SPDY3_DICTIONARY.subarray(0, 11)).toEqual(Buffer.from('\0\0\0\x07options', 'latin1'));
    expect(SPDY3_DICTIONARY.subarray(-6).toString('latin1')).toBe('enq=0.');
  });

  it('parses frames however the bytes are split', () => {
    const bytes = Buffer.concat([
      encodeControlFrame(FrameType.PING, 0, pingPayload(7)),
      encodeDataFrame(5, FLAG_FIN, Buffer.from('hello')),
    ]);
    const parser = new FrameParser();
    const frames = [...bytes].flatMap((byte) => parser.push(Buffer.from([byte])));
    // A DATA frame's payload is handed on as it arrives: one byte at a time here, FIN on the last.
    expect(frames[0]).toEqual({ kind: 'control', type: FrameType.PING, flags: 0, payload: pingPayload(7) });
    const pieces = frames.slice(1);
    expect(pieces.every((f) => f.kind === 'data' && f.streamId === 5)).toBe(true);
    expect(Buffer.concat(pieces.map((f) => (f.kind === 'data' ? f.data : Buffer.alloc(0))))).toEqual(
      Buffer.from('hello'),
    );
    expect(pieces.map((f) => f.flags)).toEqual([0, 0, 0, 0, FLAG_FIN]);
    expect(parser.pending).toBe(0);
  });

  it('refuses another SPDY version and oversized control frames', () => {
    const version2 = encodeControlFrame(FrameType.PING, 0, pingPayload(1));
    version2.writeUInt16BE(0x8002, 0);
    expect(() => new FrameParser().push(version2)).toThrow(ProtocolError);
    const huge = encodeControlFrame(FrameType.SETTINGS, 0, Buffer.alloc(16));
    huge.writeUIntBE(0x200000, 5, 3);
    expect(() => new FrameParser({ maxControlFrameLength: 1024 }).push(huge)).toThrow(/exceeds/);
  });

  it('writes empty reply header blocks that one zlib stream with the dictionary reads, every time', async () => {
    const blocks = new EmptyHeaderBlocks();
    const first = blocks.next();
    // zlib header: deflate, a preset dictionary (FDICT), its id the dictionary's Adler-32.
    const [cmf = 0, flg = 0] = first;
    expect(cmf).toBe(0x78);
    expect(flg & 0x20).toBe(0x20);
    expect((cmf * 256 + flg) % 31).toBe(0);
    const later = Array.from({ length: 200 }, () => blocks.next());
    expect(later.every((block) => block.equals(first.subarray(6)))).toBe(true);
    const reader = new HeaderDecompressor();
    for (const block of [first, ...later]) {
      expect(decodeHeaderBlock(await reader.decompress(block))).toEqual({});
    }
    reader.close();
  });

  it('round-trips header blocks and rejects malformed ones', () => {
    const headers = { streamtype: ['data'], port: ['8080'], requestid: ['0'], multi: ['a', 'b'] };
    expect(decodeHeaderBlock(encodeHeaderBlock(headers))).toEqual(headers);
    expect(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 1, 0, 0, 0, 9, 1]))).toThrow(/truncated/);
    expect(() => decodeHeaderBlock(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toThrow(/declares/);
    const upper = Buffer.concat([
      Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]),
      Buffer.from('A'),
      Buffer.from([0, 0, 0, 0]),
    ]);
    expect(() => decodeHeaderBlock(upper)).toThrow(/lowercase/);
  });
});

describe('the SPDY/3 server session', () => {
  it('replies to every stream, delivers its headers and data, and sends data back with FIN', async () => {
    const { streams, client } = setup();
    const id = await client.open({ streamType: 'stdin' });
    await until(() => streams.length === 1);
    const stream = streams[0] as SpdyStream;
    expect(stream.id).toBe(1);
    expect(stream.header('streamtype')).toBe('stdin');
    await until(() => client.replies.has(id));
    expect(client.replies.get(id)).toEqual({});

    const received: string[] = [];
    stream.on('data', (chunk: Buffer) => received.push(chunk.toString()));
    const ended = new Promise((resolve) => stream.once('end', resolve));
    client.send(id, 'hello ');
    client.send(id, 'world', FLAG_FIN);
    await ended;
    expect(received.join('')).toBe('hello world');

    stream.write('answer');
    stream.end();
    await until(() => client.received(id).fin);
    expect(client.received(id).data).toBe('answer');
  });

  it('keeps one compression context for many streams', async () => {
    const { streams, client } = setup();
    for (let i = 0; i < 20; i++) await client.open({ streamtype: 'data', port: '80', requestid: String(i) });
    await until(() => streams.length === 20);
    expect(streams.map((s) => s.header('requestid'))).toEqual(
      Array.from({ length: 20 }, (_, i) => String(i)),
    );
    await until(() => client.replies.size === 20);
  });

  it('echoes client pings only', async () => {
    const { client } = setup();
    client.control(FrameType.PING, 0, pingPayload(3));
    client.control(FrameType.PING, 0, pingPayload(4));
    await until(() => client.controlFrames(FrameType.PING).length === 1);
    await sleep(20);
    expect(client.controlFrames(FrameType.PING)).toHaveLength(1);
  });

  it('ignores SETTINGS and WINDOW_UPDATE, and data for unknown streams', async () => {
    const { session, failures, client, streams } = setup();
    client.control(FrameType.SETTINGS, 0, Buffer.from([0, 0, 0, 0]));
    client.control(FrameType.WINDOW_UPDATE, 0, Buffer.from([0, 0, 0, 1, 0, 0, 0x10, 0]));
    client.send(99, 'nobody listens');
    const id = await client.open({ streamtype: 'error' });
    await until(() => streams.length === 1);
    expect(id).toBe(1);
    expect(failures).toEqual([]);
    expect(session.isClosed).toBe(false);
  });

  it('hands the peer’s reset to the stream, and resets on request', async () => {
    const { client, streams } = setup();
    const id = await client.open({ streamtype: 'stdout' });
    await until(() => streams.length === 1);
    const stream = streams[0] as SpdyStream;
    const closed = new Promise((resolve) => stream.once('close', resolve));
    client.control(FrameType.RST_STREAM, 0, rstStreamPayload(id, RstStatus.CANCEL));
    await closed;
    expect(stream.wasReset).toBe(true);

    const second = await client.open({ streamtype: 'stderr' });
    await until(() => streams.length === 2);
    (streams[1] as SpdyStream).reset();
    await until(() => client.controlFrames(FrameType.RST_STREAM).length === 1);
    const rst = client.controlFrames(FrameType.RST_STREAM)[0];
    expect(rst?.kind === 'control' && parseRstStream(rst.payload)).toEqual({
      streamId: second,
      status: RstStatus.CANCEL,
    });
  });

  it('refuses streams beyond the limit', async () => {
    const { client, streams } = setup(2);
    for (let i = 0; i < 3; i++) await client.open({ streamtype: 'data' });
    await until(() => client.controlFrames(FrameType.RST_STREAM).length === 1);
    expect(streams).toHaveLength(2);
    const rst = client.controlFrames(FrameType.RST_STREAM)[0];
    expect(rst?.kind === 'control' && parseRstStream(rst.payload).status).toBe(RstStatus.REFUSED_STREAM);
  });

  it('ends everything with GOAWAY(OK) on close', async () => {
    const { session, client, streams } = setup();
    const id = await client.open({ streamtype: 'stdout' });
    await until(() => streams.length === 1);
    session.close();
    await until(() => client.controlFrames(FrameType.GOAWAY).length === 1);
    const goaway = client.controlFrames(FrameType.GOAWAY)[0];
    expect(goaway?.kind === 'control' && parseGoaway(goaway.payload).status).toBe(GoawayStatus.OK);
    expect(client.received(id).fin).toBe(true);
  });
});

describe('hostile and broken input', () => {
  async function expectProtocolFailure(send: (client: TestSpdyClient) => unknown) {
    const { session, client, failures } = setup();
    await send(client);
    await until(() => session.isClosed);
    expect(failures[0]).toBeInstanceOf(ProtocolError);
    await until(() => client.controlFrames(FrameType.GOAWAY).length === 1 || client.closed);
  }

  it('closes the session on a header block that is not zlib', () =>
    expectProtocolFailure((client) =>
      client.control(FrameType.SYN_STREAM, 0, synStreamPayload(1, 0, Buffer.from('definitely not deflate'))),
    ));

  it('closes the session on a truncated SYN_STREAM', () =>
    expectProtocolFailure((client) => client.control(FrameType.SYN_STREAM, 0, Buffer.from([0, 0, 0, 1]))));

  it('closes the session on a server-side (even) stream id from the client', () =>
    expectProtocolFailure(async (client) => {
      await client.open({ streamtype: 'data' });
      // Re-using stream id 1 is not a new stream.
      client.raw(encodeControlFrame(FrameType.SYN_STREAM, 0, synStreamPayload(1, 0, Buffer.alloc(0))));
    }));

  it('closes the session on another SPDY version', () =>
    expectProtocolFailure((client) => {
      const frame = encodeControlFrame(FrameType.PING, 0, pingPayload(1));
      frame.writeUInt16BE(0x8002, 0);
      client.raw(frame);
    }));

  it('closes the session on random bytes, without throwing', () =>
    expectProtocolFailure((client) =>
      client.raw(Buffer.from([0x80, 0x03, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff])),
    ));

  it('survives the peer vanishing mid-frame', async () => {
    const { session, streams, client, clientSide } = setup();
    await client.open({ streamtype: 'stdin' });
    await until(() => streams.length === 1);
    client.raw(encodeDataFrame(1, 0, Buffer.alloc(100)).subarray(0, 50));
    clientSide.end();
    clientSide.destroy();
    await until(() => session.isClosed);
    expect(streams[0]?.destroyed).toBe(true);
  });
});

describe('early refusal', () => {
  it('fails at once on a large DATA frame for a stream that was never opened', async () => {
    const { session, client, failures } = setup();
    // Only the 8-byte header: the parser must not wait for 10 MB that will never come.
    client.raw(encodeDataFrame(41, 0, Buffer.alloc(0)).fill(0, 0, 0));
    const header = Buffer.alloc(8);
    header.writeUInt32BE(41, 0);
    header.writeUIntBE(10 * 1024 * 1024, 5, 3);
    client.raw(header);
    await until(() => session.isClosed);
    expect(failures[0]?.message).toMatch(/never opened/);
  });
});

describe('flow control from the socket', () => {
  it('stops reading while a consumer is behind, resumes when it reads, and delivers everything', async () => {
    const [serverSide, clientSide] = duplexPair();
    const session = new SpdySession(serverSide, Buffer.alloc(0), { receiveBufferBytes: 64 * 1024 });
    const streams: SpdyStream[] = [];
    session.on('stream', (stream) => streams.push(stream));
    const client = new TestSpdyClient(clientSide);
    const id = await client.open({ streamtype: 'stdin' });
    await until(() => streams.length === 1);
    const payload = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32BE(i, i);
    for (let offset = 0; offset < payload.length; offset += 16 * 1024) {
      client.send(id, payload.subarray(offset, offset + 16 * 1024));
    }
    client.send(id, '', FLAG_FIN);
    await until(() => session.isReceivePaused);
    // Nobody reads: the session holds its budget (and one read past it), not the megabyte.
    await sleep(20);
    expect(session.bufferedReceived).toBeLessThanOrEqual(64 * 1024 + 16 * 1024 + 8);
    const chunks: Buffer[] = [];
    const stream = streams[0] as SpdyStream;
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    await new Promise((resolve) => stream.once('end', resolve));
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    expect(session.isReceivePaused).toBe(false);
  });

  it('holds a writer back while the socket is full, and writes everything before GOAWAY on close', async () => {
    const { session, streams, client } = setup();
    const id = await client.open({ streamtype: 'stdout' });
    await until(() => streams.length === 1);
    const stream = streams[0] as SpdyStream;
    const payload = Buffer.alloc(2 * 1024 * 1024, 3);
    let written = 0;
    while (written < payload.length && stream.write(payload.subarray(written, written + 64 * 1024))) {
      written += 64 * 1024;
    }
    // The stream's buffer filled (write() said wait) before the 2 MiB were taken.
    expect(written).toBeLessThan(payload.length);
    for (written += 64 * 1024; written < payload.length; written += 64 * 1024) {
      stream.write(payload.subarray(written, written + 64 * 1024));
    }
    session.close();
    await until(() => client.controlFrames(FrameType.GOAWAY).length === 1, 10_000);
    const { data, fin } = client.received(id);
    expect(data.length).toBe(payload.length);
    expect(fin).toBe(true);
    // GOAWAY is the last frame: after every DATA frame of the stream.
    expect(client.frames.at(-1)?.kind === 'control' && client.frames.at(-1)).toMatchObject({
      type: FrameType.GOAWAY,
    });
  });
});
