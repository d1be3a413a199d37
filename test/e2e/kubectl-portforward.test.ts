// kubectl port-forward through the host API server (SPDY to Spillway), and the WebSocket channel
// protocols spoken directly to Spillway's kubelet port, for exec and the legacy port-forward.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import { kubeconfigCredentials } from '../support/kubelet-client.ts';
import {
  createKubeletTestNamespace,
  kubeletTestNames,
  removeKubeletTestNamespace,
  runPods,
} from '../support/kubelet-fixture.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';

const test = kubeletTestNames('pf');
const { namespace } = test;
const podPort = 8080;
let spillway: Spillway;
let echo: Server;
let kubeletPort: number;
let forwarder: ChildProcess | undefined;

/** What the "pod" listens on: an echo server (what arrives goes back). */
function startEchoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as { port: number }).port }),
    ),
  );
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Sends `payload` through a TCP connection and collects as many bytes back. */
function exchange(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= payload.length) {
        socket.end();
        resolve(Buffer.concat(chunks));
      }
    });
    socket.on('error', reject);
    socket.write(payload);
  });
}

beforeAll(async () => {
  const started = await startEchoServer();
  echo = started.server;
  await createKubeletTestNamespace(test, { logs: '', forwardTo: { port: podPort, target: started.port } });
  kubeletPort = await freePort();
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    kubeletPort,
    remotes: [test.remoteConfig],
  });
  await runPods(test, ['server'], 'pf');
});

afterAll(async () => {
  forwarder?.kill('SIGKILL');
  echo?.close();
  await removeKubeletTestNamespace(test, () => spillway?.stop());
});

describe('kubectl port-forward', () => {
  it('carries 1 MiB each way, on two connections at once', async () => {
    forwarder = spawn(
      clusters.kubectlBinary,
      [
        `--kubeconfig=${clusters.host.kubeconfig}`,
        '-n',
        namespace,
        'port-forward',
        'pod/server',
        `:${podPort}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    forwarder.stdout?.on('data', (chunk) => (output += chunk));
    const localPort = Number(
      await waitFor('forwarding', () => /Forwarding from 127\.0\.0\.1:(\d+)/.exec(output)?.[1], {
        timeoutMs: 30_000,
      }),
    );
    const payloads = [randomBytes(1024 * 1024), randomBytes(1024 * 1024)];
    const answers = await Promise.all(payloads.map((payload) => exchange(localPort, payload)));
    for (const [i, payload] of payloads.entries()) {
      expect(answers[i]?.length).toBe(payload.length);
      expect(sha256(answers[i] as Buffer)).toBe(sha256(payload));
    }
  });
});

describe('the kubelet port over WebSocket', () => {
  const url = (path: string) => `wss://127.0.0.1:${kubeletPort}${path}`;

  async function open(
    path: string,
    protocol: string,
  ): Promise<{ socket: WebSocket; messages: (Buffer | string)[]; closed: Promise<void> }> {
    const socket = new WebSocket(url(path), [protocol], {
      ...(await kubeconfigCredentials(clusters.host.kubeconfig)),
      rejectUnauthorized: false,
    });
    const messages: (Buffer | string)[] = [];
    socket.on('message', (data: Buffer, isBinary: boolean) =>
      messages.push(isBinary ? data : data.toString()),
    );
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    expect(socket.protocol).toBe(protocol);
    return { socket, messages, closed };
  }

  const exec = `/exec/${namespace}/server/main?command=sh&command=-c&command=echo+hello;+exit+4&output=1&error=1`;

  it.each(['v5.channel.k8s.io', 'v4.channel.k8s.io', 'channel.k8s.io'])(
    'runs exec over %s',
    async (protocol) => {
      const { messages, closed } = await open(exec, protocol);
      await closed;
      const binary = messages.filter((m): m is Buffer => Buffer.isBuffer(m));
      const stdout = Buffer.concat(binary.filter((m) => m[0] === 1).map((m) => m.subarray(1))).toString();
      expect(stdout).toBe('hello\n');
      const status = Buffer.concat(binary.filter((m) => m[0] === 3).map((m) => m.subarray(1))).toString();
      if (protocol === 'channel.k8s.io') expect(status).toMatch(/exit code: exit status 4/);
      else
        expect(JSON.parse(status)).toMatchObject({
          status: 'Failure',
          reason: 'NonZeroExitCode',
          details: { causes: [{ reason: 'ExitCode', message: '4' }] },
        });
    },
  );

  it.each(['v4.base64.channel.k8s.io', 'base64.channel.k8s.io'])('runs exec over %s', async (protocol) => {
    const { messages, closed } = await open(exec, protocol);
    await closed;
    const texts = messages.filter((m): m is string => typeof m === 'string');
    const stdout = texts
      .filter((m) => m[0] === '1')
      .map((m) => Buffer.from(m.slice(1), 'base64').toString())
      .join('');
    expect(stdout).toBe('hello\n');
  });

  it('sends stdin and, with v5, its end', async () => {
    const path = `/exec/${namespace}/server/main?command=head&command=-c&command=5&input=1&output=1`;
    const { socket, messages, closed } = await open(path, 'v5.channel.k8s.io');
    socket.send(Buffer.concat([Buffer.from([0]), Buffer.from('abcdefgh')]));
    socket.send(Buffer.from([255, 0]));
    await closed;
    const stdout = Buffer.concat(
      messages.filter((m): m is Buffer => Buffer.isBuffer(m) && m[0] === 1).map((m) => m.subarray(1)),
    );
    expect(stdout.toString()).toBe('abcde');
  });

  it('forwards a port over the legacy WebSocket protocol', async () => {
    const { socket, messages } = await open(
      `/portForward/${namespace}/server?port=${podPort}`,
      'v4.channel.k8s.io',
    );
    const payload = randomBytes(64 * 1024);
    await waitFor('port prefixes', () => (messages.length >= 2 ? true : undefined));
    // The first message of each channel is the port, little-endian.
    expect(messages.slice(0, 2)).toEqual([
      Buffer.from([0, podPort & 0xff, podPort >> 8]),
      Buffer.from([1, podPort & 0xff, podPort >> 8]),
    ]);
    socket.send(Buffer.concat([Buffer.from([0]), payload]));
    const echoed = await waitFor('echo', () => {
      const data = Buffer.concat(
        messages
          .slice(2)
          .filter((m): m is Buffer => Buffer.isBuffer(m) && m[0] === 0)
          .map((m) => m.subarray(1)),
      );
      return data.length >= payload.length ? data : undefined;
    });
    expect(sha256(echoed)).toBe(sha256(payload));
    socket.close();
  });
});
