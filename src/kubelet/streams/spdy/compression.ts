// SPDY/3 header compression: one zlib context per direction for the whole connection, primed with
// the SPDY/3 dictionary, each header block flushed with Z_SYNC_FLUSH. Calls must not overlap: the
// session processes frames one after another.
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';
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

export class HeaderCompressor {
  // What the server sends is an empty header block per stream: a tiny window and hash table are
  // plenty, and keep an open session's compressor at a few KiB instead of zlib's default 256 KiB.
  // (The peer's decompressor, with its 32 KiB window and the whole dictionary, reads it all the same.)
  private readonly deflate = createDeflate({ dictionary: SPDY3_DICTIONARY, windowBits: 9, memLevel: 1 });

  compress(block: Buffer): Promise<Buffer> {
    return process(this.deflate, block, Number.POSITIVE_INFINITY);
  }

  close(): void {
    this.deflate.destroy();
  }
}
