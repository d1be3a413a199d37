// Property-based fuzzing (fast-check, fixed seeds, so every run replays the same cases) of the SPDY/3
// frame codec and header blocks, and of the server session fed with arbitrary mixes of valid frames,
// protocol violations and garbage: nothing throws out of them, nothing they hold grows past its
// bound, and a broken peer gets a clean close with an error.
import { duplexPair } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeHeaderBlock,
  encodeControlFrame,
  encodeDataFrame,
  encodeHeaderBlock,
  type Frame,
  FrameParser,
  FrameType,
  type HeaderMap,
  ProtocolError,
  pingPayload,
  rstStreamPayload,
  synStreamPayload,
} from '../../src/kubelet/streams/spdy/frames.ts';
import { SpdySession, type SpdyStream } from '../../src/kubelet/streams/spdy/session.ts';
import { TestSpdyClient } from '../support/spdy-client.ts';

const RUNS = 10_000;
/** Generous: 10,000 cases take seconds, more on a loaded machine (a deadline, not a measurement). */
const FUZZ_TIMEOUT_MS = 120_000;
const MAX_CONTROL = 4096;

/** Splits bytes at the given cut points (fractions of the length), as a socket may deliver them. */
function split(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    if (point > start) pieces.push(bytes.subarray(start, point));
    start = Math.max(start, point);
  }
  return pieces;
}

/** Frames with data pieces of one frame joined, so that parsed and encoded sequences compare. */
function normalize(frames: readonly Frame[]): Frame[] {
  const out: Frame[] = [];
  for (const frame of frames) {
    const last = out.at(-1);
    if (
      frame.kind === 'data' &&
      last?.kind === 'data' &&
      last.streamId === frame.streamId &&
      last.flags === 0
    ) {
      out[out.length - 1] = { ...frame, data: Buffer.concat([last.data, frame.data]) };
    } else {
      out.push(frame.kind === 'data' ? { ...frame, data: Buffer.from(frame.data) } : frame);
    }
  }
  return out;
}

const dataFrame = fc.record({
  kind: fc.constant('data' as const),
  streamId: fc.integer({ min: 0, max: 0x7fffffff }),
  flags: fc.integer({ min: 0, max: 255 }),
  data: fc.uint8Array({ maxLength: 2048 }).map((a) => Buffer.from(a)),
});
const controlFrame = fc.record({
  kind: fc.constant('control' as const),
  type: fc.oneof(fc.constantFrom(...Object.values(FrameType)), fc.integer({ min: 0, max: 0xffff })),
  flags: fc.integer({ min: 0, max: 255 }),
  payload: fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)),
});

function encode(frame: Frame): Buffer {
  return frame.kind === 'data'
    ? encodeDataFrame(frame.streamId, frame.flags, frame.data)
    : encodeControlFrame(frame.type, frame.flags, frame.payload);
}

describe('SPDY/3 frame codec (fuzzed)', () => {
  it(
    'parses what it encodes, however the bytes are split',
    () => {
      fc.assert(
        fc.property(
          fc.array(fc.oneof(dataFrame, controlFrame), { maxLength: 8 }),
          fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
          (frames, cuts) => {
            const parser = new FrameParser({ maxControlFrameLength: MAX_CONTROL });
            const parsed = split(Buffer.concat(frames.map(encode)), cuts).flatMap((piece) =>
              parser.push(piece),
            );
            expect(normalize(parsed)).toEqual(normalize(frames));
            expect(parser.pending).toBe(0);
          },
        ),
        { numRuns: RUNS, seed: 9001 },
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'meets arbitrary bytes with frames or a ProtocolError, never holding more than one control frame',
    () => {
      fc.assert(
        fc.property(
          fc.array(fc.uint8Array({ maxLength: 600 }), { maxLength: 8 }),
          fc.boolean(),
          (chunks, plausibleHeader) => {
            const parser = new FrameParser({
              maxControlFrameLength: MAX_CONTROL,
              acceptData: (id) => id < 100,
            });
            for (const [i, chunk] of chunks.entries()) {
              const bytes = Buffer.from(chunk);
              // Half the cases start like a real control frame, to get past the version check.
              if (plausibleHeader && i === 0 && bytes.length >= 2) bytes.writeUInt16BE(0x8003, 0);
              try {
                parser.push(bytes);
              } catch (error) {
                expect(error).toBeInstanceOf(ProtocolError);
                return;
              }
              expect(parser.pending).toBeLessThanOrEqual(8 + MAX_CONTROL);
            }
          },
        ),
        { numRuns: RUNS, seed: 9002 },
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  const headerName = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
  const headerValue = fc.string({ maxLength: 40 }).filter((v) => !v.includes('\0'));

  it(
    'round-trips header blocks, and refuses malformed ones with a ProtocolError',
    () => {
      fc.assert(
        fc.property(
          fc.dictionary(headerName, fc.array(headerValue, { minLength: 1, maxLength: 3 }), { maxKeys: 8 }),
          fc.uint8Array({ maxLength: 200 }),
          (headers: HeaderMap, garbage) => {
            expect(decodeHeaderBlock(encodeHeaderBlock(headers))).toEqual(headers);
            try {
              decodeHeaderBlock(Buffer.from(garbage));
            } catch (error) {
              expect(error).toBeInstanceOf(ProtocolError);
            }
          },
        ),
        { numRuns: RUNS, seed: 9003 },
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

/** What a fuzzed peer does, one step at a time. */
type Step =
  | { op: 'open'; type: string; fin: boolean }
  | { op: 'data'; stream: number; bytes: number; fin: boolean }
  | { op: 'stray'; id: number; bytes: number }
  | { op: 'control'; type: number; payload: Uint8Array }
  | { op: 'rst' | 'ping'; stream: number }
  | { op: 'reuse' }
  | { op: 'garbage'; bytes: Uint8Array }
  | { op: 'consume' | 'reset' | 'write'; stream: number }
  | { op: 'close' }
  | { op: 'vanish' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('open' as const),
      type: fc.constantFrom('stdin', 'stdout', 'data'),
      fin: fc.boolean(),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('data' as const),
      stream: fc.nat(6),
      bytes: fc.integer({ min: 0, max: 12_000 }),
      fin: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('stray' as const),
      id: fc.integer({ min: 1, max: 0x7fffffff }),
      bytes: fc.integer({ min: 0, max: 200_000 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('control' as const),
      type: fc.integer({ min: 0, max: 12 }),
      payload: fc.uint8Array({ maxLength: 64 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constantFrom('rst' as const, 'ping' as const), stream: fc.nat(6) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'reuse' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('garbage' as const),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constantFrom('consume' as const, 'reset' as const, 'write' as const),
      stream: fc.nat(6),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'close' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'vanish' as const }) },
);

const RECEIVE_BUDGET = 16 * 1024;
/** The largest single write of the peer: one socket read may cross the budget, no more. */
function largestWrite(steps: readonly Step[]): number {
  let largest = 1024;
  for (const s of steps) {
    if (s.op === 'data' || s.op === 'stray') largest = Math.max(largest, s.bytes + 8);
  }
  return largest;
}

async function settle(until: () => boolean = () => false, turns = 6): Promise<void> {
  for (let i = 0; i < turns && !until(); i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('SPDY/3 server session (fuzzed)', () => {
  it(
    'survives any mix of frames and garbage: bounded buffers, and a clean close with an error',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { maxLength: 10 }), async (steps) => {
          const [serverSide, clientSide] = duplexPair();
          const session = new SpdySession(serverSide, Buffer.alloc(0), {
            maxStreams: 4,
            receiveBufferBytes: RECEIVE_BUDGET,
            sendBufferBytes: 4096,
          });
          const streams: SpdyStream[] = [];
          const failures: Error[] = [];
          session.on('stream', (stream) => {
            stream.on('error', () => {});
            streams.push(stream);
          });
          session.on('failure', (error) => failures.push(error));
          const client = new TestSpdyClient(clientSide);
          const opened: number[] = [];
          for (const s of steps) {
            if (client.closed) break;
            switch (s.op) {
              case 'open':
                opened.push(await client.open({ streamtype: s.type }, s.fin ? 1 : 0));
                break;
              case 'data': {
                const id = opened[s.stream % Math.max(1, opened.length)] ?? 1;
                client.send(id, Buffer.alloc(s.bytes, 7), s.fin ? 1 : 0);
                break;
              }
              case 'stray':
                client.send(s.id, Buffer.alloc(s.bytes));
                break;
              case 'control':
                client.control(s.type, 0, Buffer.from(s.payload));
                break;
              case 'rst':
                client.control(FrameType.RST_STREAM, 0, rstStreamPayload(opened[s.stream] ?? 1, 5));
                break;
              case 'ping':
                client.control(FrameType.PING, 0, pingPayload(2 * s.stream + 1));
                break;
              case 'reuse':
                client.raw(
                  encodeControlFrame(FrameType.SYN_STREAM, 0, synStreamPayload(1, 0, Buffer.alloc(4))),
                );
                break;
              case 'garbage':
                client.raw(Buffer.from(s.bytes));
                break;
              case 'consume':
                streams[s.stream]?.resume();
                break;
              case 'reset':
                streams[s.stream]?.reset();
                break;
              case 'write':
                streams[s.stream]?.write(Buffer.alloc(10_000, 1));
                break;
              case 'close':
                session.close();
                break;
              case 'vanish':
                // The connection breaks (as a reset TCP connection does).
                serverSide.destroy();
                break;
            }
            await settle();
            // What the session holds for slow consumers stays within its budget (plus the one write
            // that crossed it), however the peer behaves.
            expect(session.bufferedReceived).toBeLessThanOrEqual(RECEIVE_BUDGET + largestWrite(steps));
            expect(session.bufferedBytes - session.bufferedReceived).toBeLessThanOrEqual(256 * 1024 + 8);
            expect(session.openStreams).toBeLessThanOrEqual(4);
          }
          if (failures.length > 0) {
            // A broken peer: the session is closed and said why (GOAWAY), or the peer had gone already.
            expect(session.isClosed).toBe(true);
            expect(failures[0]).toBeInstanceOf(ProtocolError);
            const told = () =>
              client.controlFrames(FrameType.GOAWAY).length > 0 || client.ended || client.closed;
            await settle(told, 500);
            expect(told()).toBe(true);
          }
          // The peer says goodbye (FIN); once the consumers read what is left, the session sees it and
          // ends. Then the connection goes: nothing is left open.
          clientSide.end();
          for (const stream of streams) stream.resume();
          await settle(() => session.isClosed, 50);
          serverSide.destroy();
          await settle();
          expect(session.isClosed).toBe(true);
          expect(session.openStreams).toBe(0);
          expect(streams.every((stream) => stream.destroyed)).toBe(true);
        }),
        { numRuns: RUNS, seed: 9004 },
      );
    },
    4 * FUZZ_TIMEOUT_MS,
  );
});
