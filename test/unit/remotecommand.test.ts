// The exec/attach bridge against a local v5.channel.k8s.io peer on loopback: what reaches the remote
// side (stdin, its EOF, resizes), what reaches the client (stdout, stderr, the final status) and how
// either side going away ends the session. Plus the channel codecs and the kubelet's parameter rules.
import type { AddressInfo } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import type { KubeStatus } from '../../src/kube/errors.ts';
import { holdEvents } from '../../src/kubelet/remote-ws.ts';
import {
  bridge,
  commandOptions,
  type InboundStreams,
  normalizeExitStatus,
  ResizeQueue,
} from '../../src/kubelet/remotecommand.ts';
import { channelCodec, headerList, negotiate } from '../../src/kubelet/streams/channel.ts';

const logger = pino({ level: 'silent' });
let server: WebSocketServer;
let url: string;
const peers: WebSocket[] = [];

beforeAll(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'v5.channel.k8s.io' });
  server.on('connection', (socket) => peers.push(socket));
  await new Promise<void>((resolve) => server.once('listening', resolve));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const peer of peers) peer.terminate();
  await new Promise((resolve) => server.close(resolve));
});

/** A client connected to the local peer, and the peer's end of it with every message it receives. */
async function connectPair(): Promise<{ client: WebSocket; peer: WebSocket; received: Buffer[] }> {
  const accepted = new Promise<WebSocket>((resolve) => server.once('connection', resolve));
  const client = new WebSocket(url, ['v5.channel.k8s.io']);
  await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
  const peer = await accepted;
  const received: Buffer[] = [];
  peer.on('message', (data: Buffer) => received.push(Buffer.from(data)));
  return { client, peer, received };
}

function inboundStreams(options: { stdin?: boolean; resize?: boolean } = {}) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const stdin = options.stdin ? new PassThrough() : undefined;
  const resize = options.resize ? new ResizeQueue() : undefined;
  const statuses: KubeStatus[] = [];
  let closed = 0;
  let gone: (() => void) | undefined;
  const collect = (stream: PassThrough) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    return () => Buffer.concat(chunks).toString();
  };
  const inbound: InboundStreams = {
    stdin,
    stdout,
    stderr,
    resize,
    sendStatus: (status) => statuses.push(status),
    close: () => closed++,
    onGone: (listener) => (gone = listener),
  };
  return {
    inbound,
    stdin,
    resize,
    statuses,
    stdoutText: collect(stdout),
    stderrText: collect(stderr),
    closedCount: () => closed,
    leave: () => gone?.(),
  };
}

const until = async (condition: () => boolean) => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
};

describe('bridge', () => {
  it('carries stdin with its EOF to the remote, and output and the exit code back', async () => {
    const { client, peer, received } = await connectPair();
    const streams = inboundStreams({ stdin: true });
    const done = bridge(streams.inbound, client, logger);

    streams.stdin?.write('hello\n');
    streams.stdin?.end();
    await until(() => received.length === 2);
    expect(received[0]).toEqual(Buffer.from([0, ...Buffer.from('hello\n')]));
    expect(received[1]).toEqual(Buffer.from([255, 0]));

    peer.send(Buffer.from([1, ...Buffer.from('out')]));
    peer.send(Buffer.from([2, ...Buffer.from('err')]));
    peer.send(
      Buffer.from([
        3,
        ...Buffer.from(
          JSON.stringify({
            kind: 'Status',
            status: 'Failure',
            reason: 'InternalError',
            message: 'command failed: exit status 3',
          }),
        ),
      ]),
    );
    peer.close(1000);
    await done;

    expect(streams.stdoutText()).toBe('out');
    expect(streams.stderrText()).toBe('err');
    expect(streams.statuses).toHaveLength(1);
    expect(streams.statuses[0]?.reason).toBe('NonZeroExitCode');
    expect(streams.statuses[0]?.details?.causes?.[0]?.message).toBe('3');
    expect(streams.closedCount()).toBe(1);
  });

  it('sends a terminal size given before the session opened, then every later one', async () => {
    const { client, received } = await connectPair();
    const streams = inboundStreams({ resize: true });
    streams.resize?.push({ Width: 80, Height: 24 });
    const done = bridge(streams.inbound, client, logger);
    streams.resize?.push({ Width: 120, Height: 40 });
    await until(() => received.length === 2);
    expect(received.map((message) => [message[0], JSON.parse(message.subarray(1).toString())])).toEqual([
      [4, { Width: 80, Height: 24 }],
      [4, { Width: 120, Height: 40 }],
    ]);
    client.close(1000);
    await done;
    expect(streams.statuses).toEqual([{ kind: 'Status', status: 'Success' }]);
  });

  it('reports an abnormal remote close as a failure to the client', async () => {
    const { client, peer } = await connectPair();
    const streams = inboundStreams();
    const done = bridge(streams.inbound, client, logger);
    peer.terminate();
    await done;
    expect(streams.statuses[0]?.status).toBe('Failure');
    expect(streams.statuses[0]?.message).toMatch(/remote stream closed \(1006/);
  });

  it('ends the session once the status is in, without waiting for the remote to close', async () => {
    const { client, peer } = await connectPair();
    const streams = inboundStreams();
    const done = bridge(streams.inbound, client, logger);
    const peerClosed = new Promise<number>((resolve) => peer.once('close', resolve));
    peer.send(Buffer.from([1, ...Buffer.from('out')]));
    peer.send(Buffer.from([3, ...Buffer.from(JSON.stringify({ kind: 'Status', status: 'Success' }))]));
    // The peer never closes by itself: the bridge finishes on the status, and closes the remote.
    await done;
    expect(streams.stdoutText()).toBe('out');
    expect(streams.statuses).toEqual([{ kind: 'Status', status: 'Success' }]);
    expect(streams.closedCount()).toBe(1);
    expect(await peerClosed).toBe(1000);
  });

  it('gets everything the remote sent before the bridge existed, in order, close included', async () => {
    const { client, peer } = await connectPair();
    const release = holdEvents(client);
    const payload = Buffer.alloc(512 * 1024);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32BE(i, i);
    for (let offset = 0; offset < payload.length; offset += 16 * 1024)
      peer.send(Buffer.concat([Buffer.from([1]), payload.subarray(offset, offset + 16 * 1024)]));
    peer.send(Buffer.from([2, ...Buffer.from('err')]));
    peer.close(1000);
    // The remote is done before the client's side is ready.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const streams = inboundStreams();
    const chunks: Buffer[] = [];
    streams.inbound.stdout?.on('data', (chunk: Buffer) => chunks.push(chunk));
    await bridge(streams.inbound, client, logger, 1024 * 1024, undefined, release);
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    expect(streams.stderrText()).toBe('err');
    expect(streams.statuses).toEqual([{ kind: 'Status', status: 'Success' }]);
  });

  it('closes the remote session when the client goes away', async () => {
    const { client, peer } = await connectPair();
    const streams = inboundStreams({ stdin: true });
    const done = bridge(streams.inbound, client, logger);
    const peerClosed = new Promise<number>((resolve) => peer.once('close', resolve));
    streams.leave();
    await done;
    expect(await peerClosed).toBe(1000);
    expect(streams.closedCount()).toBe(1);
  });
});

describe('bridge under backpressure', () => {
  /** A client that reads slowly: a small buffer, one chunk per timer tick. */
  function slowSink() {
    const chunks: Buffer[] = [];
    let peak = 0;
    const sink = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        peak = Math.max(peak, sink.writableLength);
        chunks.push(chunk);
        setTimeout(callback, 1);
      },
    });
    return { sink, data: () => Buffer.concat(chunks), peak: () => peak };
  }

  it('delivers every byte the remote sent before the status, holding the remote back meanwhile', async () => {
    const { client, peer } = await connectPair();
    const slow = slowSink();
    const statusAfter: number[] = [];
    const inbound: InboundStreams = {
      stdout: slow.sink,
      sendStatus: () => statusAfter.push(slow.data().length),
      close: () => {},
      onGone: () => {},
    };
    const done = bridge(inbound, client, logger, 256 * 1024);
    const payload = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32BE(i, i);
    let pausedSeen = false;
    const watch = setInterval(() => {
      pausedSeen ||= client.isPaused;
    }, 1);
    for (let offset = 0; offset < payload.length; offset += 32 * 1024) {
      peer.send(Buffer.concat([Buffer.from([1]), payload.subarray(offset, offset + 32 * 1024)]));
    }
    peer.send(Buffer.from([3, ...Buffer.from(JSON.stringify({ kind: 'Status', status: 'Success' }))]));
    peer.close(1000);
    await done;
    clearInterval(watch);
    expect(slow.data().equals(payload)).toBe(true);
    // The status went out only after the whole output had.
    expect(statusAfter).toEqual([payload.length]);
    expect(pausedSeen).toBe(true);
    // What waited for the client stayed near the sink's own buffer, not the 8 MiB sent.
    expect(slow.peak()).toBeLessThanOrEqual(64 * 1024 + 32 * 1024);
  });

  it('holds stdin back while the remote socket is full, and loses none of it', async () => {
    const { client, peer, received } = await connectPair();
    const stdin = new PassThrough();
    const inbound: InboundStreams = { stdin, sendStatus: () => {}, close: () => {}, onGone: () => {} };
    const done = bridge(inbound, client, logger, 128 * 1024);
    // The remote reads nothing for a while.
    (peer as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const chunk = Buffer.alloc(64 * 1024, 7);
    let accepted = 0;
    while (stdin.write(chunk)) accepted += chunk.length;
    // stdin is backed up: the writer (the client) was told to wait long before 16 MiB.
    expect(accepted).toBeLessThan(16 * 1024 * 1024);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stdin.isPaused() || stdin.readableLength > 0).toBe(true);
    const total = accepted + chunk.length;
    stdin.end();
    (peer as unknown as { _socket: { resume(): void } })._socket.resume();
    await until(() => received.at(-1)?.equals(Buffer.from([255, 0])) === true);
    const bytes = received.slice(0, -1).reduce((sum, message) => sum + message.length - 1, 0);
    expect(bytes).toBe(total);
    peer.close(1000);
    await done;
  });
});

describe('normalizeExitStatus', () => {
  it.each([
    ['exit status 0', '0'],
    ['command terminated: exit status 255', '255'],
  ])('turns "%s" into NonZeroExitCode %s', (message, code) => {
    const status = normalizeExitStatus({
      kind: 'Status',
      status: 'Failure',
      reason: 'InternalError',
      message,
    });
    expect(status.reason).toBe('NonZeroExitCode');
    expect(status.details?.causes?.[0]).toEqual({ reason: 'ExitCode', message: code });
  });

  it.each([
    { kind: 'Status', status: 'Success' },
    { kind: 'Status', status: 'Failure', reason: 'InternalError', message: 'exit status 256' },
    { kind: 'Status', status: 'Failure', reason: 'InternalError', message: 'container not found' },
    { kind: 'Status', status: 'Failure', reason: 'BadRequest', message: 'exit status 2' },
  ] satisfies KubeStatus[])('leaves %j unchanged', (status) => {
    expect(normalizeExitStatus(status)).toBe(status);
  });
});

describe('commandOptions', () => {
  const query = (text: string) => new URLSearchParams(text);

  it('reads repeated commands and the stream flags, merging stderr into a terminal', () => {
    expect(
      commandOptions(
        'exec',
        'main',
        query('command=sh&command=-c&command=id&input=1&output=1&error=1&tty=1'),
      ),
    ).toEqual({
      kind: 'exec',
      container: 'main',
      command: ['sh', '-c', 'id'],
      stdin: true,
      stdout: true,
      stderr: false,
      tty: true,
    });
  });

  it('refuses a session without streams, and an exec without a command', () => {
    expect(() => commandOptions('exec', 'main', query('command=id'))).toThrow(/at least 1 of stdin/);
    expect(() => commandOptions('exec', 'main', query('output=1'))).toThrow(/specify a command/);
    expect(commandOptions('attach', 'main', query('output=true')).command).toEqual([]);
  });
});

describe('channel codecs', () => {
  it('round-trips binary and base64 messages', () => {
    for (const protocol of ['v5.channel.k8s.io', 'v4.base64.channel.k8s.io', 'channel.k8s.io']) {
      const codec = channelCodec(protocol);
      expect(codec.decode(codec.encode(1, Buffer.from('data')))).toEqual({
        channel: 1,
        data: Buffer.from('data'),
      });
    }
  });

  it('knows CLOSE only in v5 and only as exactly two bytes', () => {
    expect(channelCodec('v5.channel.k8s.io').decode(Buffer.from([255, 0]))).toEqual({ close: 0 });
    expect(channelCodec('v5.channel.k8s.io').decode(Buffer.from([255, 0, 1]))).toBeUndefined();
    expect(channelCodec('v4.channel.k8s.io').decode(Buffer.from([255, 0]))).toBeUndefined();
  });

  it('ignores empty and out-of-range base64 messages', () => {
    const codec = channelCodec('base64.channel.k8s.io');
    expect(codec.decode('')).toBeUndefined();
    expect(codec.decode('zAAAA')).toBeUndefined();
  });

  it('negotiates in the client order and splits joined protocol headers', () => {
    expect(headerList('v4.channel.k8s.io, channel.k8s.io')).toEqual(['v4.channel.k8s.io', 'channel.k8s.io']);
    expect(
      negotiate(['nope', 'channel.k8s.io', 'v5.channel.k8s.io'], ['v5.channel.k8s.io', 'channel.k8s.io']),
    ).toBe('channel.k8s.io');
    expect(negotiate(['nope'], ['channel.k8s.io'])).toBeUndefined();
  });
});
