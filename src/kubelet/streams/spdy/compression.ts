// SPDY/3 header compression: one zlib stream per direction for the whole connection, primed with
// the SPDY/3 dictionary, each header block flushed with Z_SYNC_FLUSH. Calls must not overlap: the
// session processes frames one after another. The server's own direction needs no zlib context at all
// (EmptyHeaderBlocks).
import { constants, createDeflate, createInflate, type Deflate, deflateSync, type Inflate } from 'node:zlib';
import { SPDY3_DICTIONARY } from './dictionary.ts';
import { ProtocolError } from './frames.ts';

/** Decompressed header blocks larger than this are refused (a zip bomb, not headers). */
export const MAX_HEADER_BLOCK = 256 * 1024;

function process(stream: Deflate | Inflate, input: Buffer, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit && !failed) {
        failed = true;
        cleanup();
        reject(new ProtocolError(`header block larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    const onError = (error: Error) => {
      if (failed) return;
      failed = true;
      cleanup();
      reject(new ProtocolError(`header block does not decompress: ${error.message}`));
    };
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('error', onError);
    };
    stream.on('data', onData);
    stream.on('error', onError);
    stream.write(input);
    stream.flush(constants.Z_SYNC_FLUSH, () => {
      if (failed) return;
      cleanup();
      resolve(Buffer.concat(chunks));
    });
  });
}

export class HeaderDecompressor {
  private readonly inflate = createInflate({ dictionary: SPDY3_DICTIONARY });
  private broken = false;

  async decompress(block: Buffer): Promise<Buffer> {
    if (this.broken) throw new ProtocolError('header decompression context is broken');
    try {
      return await process(this.inflate, block, MAX_HEADER_BLOCK);
    } catch (error) {
      // A zlib context that failed once is out of sync with the peer for good.
      this.broken = true;
      this.inflate.destroy();
      throw error;
    }
  }

  close(): void {
    this.inflate.destroy();
  }
}

/**
 * What the server sends: an empty header block (no name/value pairs) in each SYN_REPLY. Stored
 * (uncompressed) deflate blocks do not depend on what came before, so the zlib stream the peer reads is
 * known in advance: the zlib header with the dictionary's id and one stored block the first time, the
 * same stored block every later time. No zlib context per session, and no trip to zlib's thread pool
 * on the way to a stream's reply.
 */
export class EmptyHeaderBlocks {
  private static readonly first = deflateSync(Buffer.alloc(4), {
    dictionary: SPDY3_DICTIONARY,
    level: 0,
    finishFlush: constants.Z_SYNC_FLUSH,
  });
  /** Without the 2-byte zlib header and the 4-byte dictionary id. */
  private static readonly later = EmptyHeaderBlocks.first.subarray(6);
  private started = false;

  next(): Buffer {
    if (this.started) return EmptyHeaderBlocks.later;
    this.started = true;
    return EmptyHeaderBlocks.first;
  }
}

/** A zlib context for header blocks of any content (what a client sends). */
export class HeaderCompressor {
  private readonly deflate = createDeflate({ dictionary: SPDY3_DICTIONARY });

  compress(block: Buffer): Promise<Buffer> {
    return process(this.deflate, block, Number.POSITIVE_INFINITY);
  }

  close(): void {
    this.deflate.destroy();
  }
}
