// Slow and fast sides through the host API server, with Spillway in its own process so that its
// resident memory can be watched: a reader that waits before reading gets every byte of a 330 MB exec
// output and of a 100 MiB port-forward download, a command that waits before reading its stdin gets
// all 100 MiB of it, and `kubectl cp` copies 50 MB out of a pod and back in, byte for byte. Meanwhile
// Spillway's memory grows by at most 64 MiB (its streams hold 1 MiB per session by default).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusters } from '../cluster/fixture.ts';
import {
  createKubeletTestNamespace,
  kubeletTestNames,
  removeKubeletTestNamespace,
  runPods,
} from '../support/kubelet-fixture.ts';
import type { KwokFixture } from '../support/kwok.ts';
import { type SpillwayProcess, startSpillwayProcess } from '../support/spillway-process.ts';
import { waitFor } from '../support/wait.ts';

const test = kubeletTestNames('bp');
const { namespace } = test;
const podPort = 9000;
const MiB = 2 ** 20;
/** The bound on Spillway's memory growth during one slow transfer. */
const RSS_GROWTH_LIMIT = 64 * MiB;
/** How long the slow side waits before it reads. */
const STALL_MS = 20_000;
/** `seq 1 N` prints this many lines: 330,888,897 bytes. */
const SEQ_LINES = 38_000_000;
const SEQ_BYTES = 330_888_897;
const BLOCK = randomBytes(MiB);
const DOWNLOAD_BLOCKS = 100;
let spillway: SpillwayProcess;
let kwok: KwokFixture;
let target: Server;
let scratch: string;

function report(what: string, baseline: number, peak: number): void {
  process.stderr.write(
    `spillway RSS during ${what}: ${(baseline / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB (+${((peak - baseline) / MiB).toFixed(1)} MiB)\n`,
  );
}

/** Spillway's resident memory at rest: the highest of a few samples, after the code paths ran once. */
async function restingRss(): Promise<number> {
  let highest = 0;
  for (let i = 0; i < 10; i++) {
    highest = Math.max(highest, spillway.rss());
    await sleep(100);
  }
  return highest;
}

/** Checks that what it is given is `1\n2\n3\n…`, counting lines and bytes, without keeping it. */
class SequenceCheck extends Writable {
  lines = 0;
  bytes = 0;
  broken: string | undefined;
  private partial = '';

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.bytes += chunk.length;
    const text = this.partial + chunk.toString('latin1');
    let start = 0;
    for (let newline = text.indexOf('\n'); newline >= 0; newline = text.indexOf('\n', start)) {
      const line = text.slice(start, newline);
      start = newline + 1;
      this.lines++;
      if (this.broken === undefined && line !== String(this.lines)) {
        this.broken = `line ${this.lines} is "${line.slice(0, 20)}"`;
      }
    }
    this.partial = text.slice(start);
    callback();
  }
}

/** The pod's server: every connection gets DOWNLOAD_BLOCKS copies of BLOCK, written with backpressure. */
function startTarget(): Promise<{ server: Server; port: number }> {
  const server = createServer(async (socket) => {
    socket.on('error', () => {});
    for (let i = 0; i < DOWNLOAD_BLOCKS && !socket.destroyed; i++) {
      if (!socket.write(BLOCK)) await once(socket, 'drain').catch(() => {});
    }
    socket.end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    ),
  );
}

function kubectlProcess(args: string[]) {
  return spawn(
    clusters.kubectlBinary,
    [`--kubeconfig=${clusters.host.kubeconfig}`, '-n', namespace, ...args],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'spillway-bp-'));
  const started = await startTarget();
  target = started.server;
  kwok = await createKubeletTestNamespace(test, {
    logs: '',
    forwardTo: { port: podPort, target: started.port },
  });
  spillway = await startSpillwayProcess({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [test.remoteConfig],
  });
  await runPods(test, ['app'], 'bp');
  // Every code path once, so that what is measured later is the transfer, not the first use.
  await waitFor('a first exec', async () => {
    const result = await clusters.kubectl('host', ['-n', namespace, 'exec', 'app', '--', 'echo', 'ready'], {
      allowFailure: true,
    });
    return result.stdout === 'ready\n' ? true : undefined;
  });
}, 300_000);

afterAll(async () => {
  target?.close();
  await removeKubeletTestNamespace(test, () => spillway?.stop());
  await rm(scratch, { recursive: true, force: true });
});

describe('a slow reader', () => {
  it('receives every byte of a 330 MB exec output, and Spillway holds it back in the remote', async () => {
    const baseline = await restingRss();
    const sampler = spillway.sampleRss();
    const exec = kubectlProcess(['exec', 'app', '--', 'seq', '1', String(SEQ_LINES)]);
    const exited = once(exec, 'exit');
    exec.stdin.end();
    let stderr = '';
    exec.stderr.on('data', (chunk) => (stderr += chunk));

    exec.stdout.pause();
    await sleep(STALL_MS);
    const check = new SequenceCheck();
    exec.stdout.pipe(check);
    const [[code]] = (await Promise.all([exited, finished(check)])) as [[number], undefined];
    const peak = sampler.stop();
    report('a 330 MB exec output to a slow reader', baseline, peak);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(check.broken).toBeUndefined();
    expect(check.lines).toBe(SEQ_LINES);
    expect(check.bytes).toBe(SEQ_BYTES);
    expect(peak - baseline).toBeLessThanOrEqual(RSS_GROWTH_LIMIT);
  }, 600_000);

  it('receives every byte of a 100 MiB port-forward download', async () => {
    const forwarder = kubectlProcess(['port-forward', 'pod/app', `:${podPort}`]);
    try {
      let output = '';
      forwarder.stdout.on('data', (chunk) => (output += chunk));
      const localPort = Number(
        await waitFor('forwarding', () => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(output)?.[1], {
          timeoutMs: 30_000,
        }),
      );
      const baseline = await restingRss();
      const sampler = spillway.sampleRss();
      const socket = connect(localPort, '127.0.0.1');
      socket.pause();
      await sleep(STALL_MS);
      let received = 0;
      let mismatch: number | undefined;
      // KWOK does not pass the server's end of the connection on (directly to the remote neither):
      // the download is complete when all its bytes are in.
      const complete = new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.on('data', (chunk: Buffer) => {
          for (let offset = 0; offset < chunk.length && mismatch === undefined; ) {
            const at = (received + offset) % MiB;
            const length = Math.min(chunk.length - offset, MiB - at);
            if (!chunk.subarray(offset, offset + length).equals(BLOCK.subarray(at, at + length))) {
              mismatch = received + offset;
            }
            offset += length;
          }
          received += chunk.length;
          if (received >= DOWNLOAD_BLOCKS * MiB) resolve();
        });
      });
      socket.resume();
      await complete;
      socket.destroy();
      const peak = sampler.stop();
      report('a 100 MiB port-forward download to a slow reader', baseline, peak);
      expect(mismatch).toBeUndefined();
      expect(received).toBe(DOWNLOAD_BLOCKS * MiB);
      expect(peak - baseline).toBeLessThanOrEqual(RSS_GROWTH_LIMIT);
    } finally {
      forwarder.kill('SIGINT');
    }
  }, 600_000);
});

describe('a slow remote', () => {
  it('gets all 100 MiB of stdin that it reads only after a while', async () => {
    const baseline = await restingRss();
    const sampler = spillway.sampleRss();
    const exec = kubectlProcess([
      'exec',
      '-i',
      'app',
      '--',
      'sh',
      '-c',
      // KWOK does not pass stdin's end to the command (directly to the remote neither): head stops
      // after the 100 MiB.
      `sleep ${STALL_MS / 1000}; head -c ${100 * MiB} | sha256sum`,
    ]);
    const exited = once(exec, 'exit');
    let stdout = '';
    exec.stdout.on('data', (chunk) => (stdout += chunk));
    const expected = createHash('sha256');
    for (let i = 0; i < 100; i++) {
      expected.update(BLOCK);
      if (!exec.stdin.write(BLOCK)) await once(exec.stdin, 'drain');
    }
    exec.stdin.end();
    const [code] = (await exited) as [number];
    const peak = sampler.stop();
    report('100 MiB of stdin to a command that reads late', baseline, peak);
    expect(code).toBe(0);
    expect(stdout.split(/\s+/)[0]).toBe(expected.digest('hex'));
    expect(peak - baseline).toBeLessThanOrEqual(RSS_GROWTH_LIMIT);
  }, 600_000);
});

describe('kubectl cp', () => {
  it('copies 50 MB out of a pod and back in, byte for byte', async () => {
    const original = randomBytes(50 * 1000 * 1000);
    // KWOK runs the pod's commands in its work directory: that is the pod's file system here.
    await writeFile(join(kwok.dir, 'blob.bin'), original);
    const local = join(scratch, 'blob.bin');
    await clusters.kubectl('host', ['-n', namespace, 'cp', 'app:blob.bin', local], { timeoutMs: 300_000 });
    expect(sha256(await readFile(local))).toBe(sha256(original));
    await clusters.kubectl('host', ['-n', namespace, 'cp', local, 'app:copy.bin'], { timeoutMs: 300_000 });
    expect(sha256(await readFile(join(kwok.dir, 'copy.bin')))).toBe(sha256(original));
  }, 600_000);
});
