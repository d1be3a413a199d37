// Property-based fuzzing (fast-check, fixed seeds) of the WebSocket channel codecs of exec, attach and
// port-forward, every protocol: what is encoded decodes to itself, and any message a peer may send
// decodes to a channel and its data, a v5 CLOSE, or nothing, without throwing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CHANNEL_CLOSE,
  channelCodec,
  PORT_FORWARD_WS_PROTOCOLS,
  REMOTE_COMMAND_WS_PROTOCOLS,
} from '../../src/kubelet/streams/channel.ts';

const RUNS = 10_000;
/** Generous: 10,000 cases take seconds, more on a loaded machine (a deadline, not a measurement). */
const FUZZ_TIMEOUT_MS = 120_000;
const protocols = [...new Set([...REMOTE_COMMAND_WS_PROTOCOLS, ...PORT_FORWARD_WS_PROTOCOLS])];

describe.each(protocols)('the %s codec (fuzzed)', (protocol) => {
  const codec = channelCodec(protocol);
  // Binary protocols address channels 0–254 (255 is CLOSE); base64 ones a single digit.
  const channel = codec.base64 ? fc.integer({ min: 0, max: 9 }) : fc.integer({ min: 0, max: 254 });

  it(
    'decodes what it encodes',
    () => {
      fc.assert(
        fc.property(channel, fc.uint8Array({ maxLength: 4096 }), (ch, bytes) => {
          const data = Buffer.from(bytes);
          const decoded = codec.decode(codec.encode(ch, data));
          expect(decoded).toEqual({ channel: ch, data });
        }),
        { numRuns: RUNS, seed: 7001 },
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'answers any message with a channel, a CLOSE or nothing',
    () => {
      const message = fc.oneof(
        fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)),
        fc.string({ maxLength: 512 }),
        fc.string({ unit: 'binary', maxLength: 64 }),
      );
      fc.assert(
        fc.property(message, (input) => {
          const decoded = codec.decode(input);
          if (decoded === undefined) return;
          if ('close' in decoded) {
            // Only v5 knows CLOSE, and only as exactly [255, channel].
            expect(codec.supportsClose).toBe(true);
            const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
            expect(bytes.length).toBe(2);
            expect(bytes[0]).toBe(CHANNEL_CLOSE);
            return;
          }
          expect(Number.isInteger(decoded.channel)).toBe(true);
          expect(decoded.channel).toBeGreaterThanOrEqual(0);
          expect(decoded.channel).toBeLessThanOrEqual(codec.base64 ? 9 : 254);
          expect(Buffer.isBuffer(decoded.data)).toBe(true);
          // Nothing is made up: the data is never longer than the message.
          expect(decoded.data.length).toBeLessThanOrEqual(Buffer.byteLength(input));
        }),
        { numRuns: RUNS, seed: 7002 },
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});
