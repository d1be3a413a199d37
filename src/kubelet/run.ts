// POST /run/{ns}/{pod}[/{uid}]/{container}?cmd=…: the kubelet's legacy one-shot command, answered
// with the command's output (stdout and stderr together). The output is held until the command ends
// (so a failure can still be a 500, as a kubelet answers it) up to the session's buffer; beyond that
// it streams with a 200 and a failure cuts the response short.
import { Writable } from 'node:stream';
import type { KubeStatus } from '../kube/errors.ts';
import { type HttpRequest, type HttpResponse, responseGone } from './http.ts';
import { badRequest, KubeletError } from './http-errors.ts';
import { bridge, type InboundStreams, openRemoteCommand, type SessionContext } from './remotecommand.ts';

/** The response body that stdout and stderr share, interleaved as they come. */
class RunOutput {
  private readonly res: HttpResponse;
  private readonly limit: number;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private committed = false;

  constructor(res: HttpResponse, limit: number) {
    this.res = res;
    this.limit = limit;
  }

  /** A Writable feeding this body, held back while the client reads slowly. */
  writer(): Writable {
    const writable = new Writable({
      highWaterMark: this.limit / 4,
      write: (chunk: Buffer, _encoding, callback) => this.write(chunk, callback),
    });
    writable.on('error', () => {});
    return writable;
  }

  private write(chunk: Buffer, callback: (error?: Error | null) => void): void {
    if (responseGone(this.res)) {
      callback(new Error('the client went away'));
      return;
    }
    if (!this.committed && this.heldBytes + chunk.length <= this.limit) {
      this.held.push(chunk);
      this.heldBytes += chunk.length;
      callback();
      return;
    }
    this.commit(200);
    if (this.res.write(chunk)) callback();
    else this.res.once('drain', () => callback());
  }

  private commit(status: number, extra?: string): void {
    if (this.committed) return;
    this.committed = true;
    this.res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    for (const chunk of this.held) this.res.write(chunk);
    if (extra !== undefined) this.res.write(extra);
    this.held = [];
  }

  /** The command ended: a 200 with its output, or (if nothing was sent yet) a 500 saying why. */
  finish(status: KubeStatus): void {
    if (responseGone(this.res)) return;
    const failed = status.status !== 'Success';
    if (!this.committed) {
      if (failed) this.held = [];
      this.commit(failed ? 500 : 200, failed ? `${status.message ?? 'command failed'}\n` : undefined);
      this.res.end();
    } else if (failed) {
      this.res.destroy();
    } else {
      this.res.end();
    }
  }
}

export async function serveRun(
  _req: HttpRequest,
  res: HttpResponse,
  context: SessionContext,
  container: string,
  query: URLSearchParams,
): Promise<void> {
  // As the kubelet: the command is one string, split on white space.
  const command = (query.get('cmd') ?? '').split(/\s+/).filter(Boolean);
  if (command.length === 0) throw badRequest('you must specify a command (cmd)');
  const options = {
    kind: 'exec' as const,
    container,
    command,
    stdin: false,
    stdout: true,
    stderr: true,
    tty: false,
  };
  const controller = new AbortController();
  res.once('close', () => controller.abort());
  const remote = await openRemoteCommand(context.target, options, { signal: controller.signal }).catch(
    (error) => {
      throw error instanceof KubeletError ? error : new KubeletError(502, (error as Error).message);
    },
  );
  const output = new RunOutput(res, context.bufferBytes);
  const inbound: InboundStreams = {
    stdout: output.writer(),
    stderr: output.writer(),
    sendStatus: (status) => output.finish(status),
    close: () => {},
    onGone: (listener) => res.once('close', listener),
  };
  await bridge(inbound, remote, context.logger, context.bufferBytes);
}
