// Timed reads and execs against one API server: a GET whose body is counted and dropped (no client
// buffering in the way), `Exec` sessions over client-node's WebSocket timed from the request to the
// closed socket, many idle `logs -f` followers each on its own connection, and a `kubectl exec`
// whose reader waits before it reads.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { type RequestOptions, request } from 'node:https';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';

export interface TimedRead {
  readonly bytes: number;
  readonly ms: number;
}

async function requestOptions(kubeConfig: KubeConfig): Promise<{ server: string; options: RequestOptions }> {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig names no cluster');
  const options: RequestOptions = { method: 'GET' };
  await kubeConfig.applyToHTTPSOptions(options);
  return { server, options };
}

/** GETs `path` from the kubeconfig's API server and counts the body's bytes as they arrive. */
export async function timedGet(kubeConfig: KubeConfig, path: string): Promise<TimedRead> {
  const { server, options } = await requestOptions(kubeConfig);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, server), options, (res) => {
      let bytes = 0;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (res.statusCode !== 200 && chunks.length < 16) chunks.push(chunk);
      });
      res.on('error', reject);
      res.on('end', () => {
        if (res.statusCode !== 200) {
          reject(
            new Error(`GET ${path}: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 500)}`),
          );
        } else {
          resolve({ bytes, ms: performance.now() - started });
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Runs `command` in the pod's container and returns its stdout, the exit status and the elapsed time. */
export async function timedExec(
  kubeConfig: KubeConfig,
  namespace: string,
  pod: string,
  container: string,
  command: readonly string[],
): Promise<{ stdout: string; status: V1Status | undefined; ms: number }> {
  let stdout = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      stdout += chunk.toString();
      callback();
    },
  });
  let status: V1Status | undefined;
  const started = performance.now();
  const socket = await new Exec(kubeConfig).exec(
    namespace,
    pod,
    container,
    [...command],
    sink,
    null,
    null,
    false,
    (s) => {
      status = s;
    },
  );
  await new Promise<void>((resolve, reject) => {
    if (socket.readyState === socket.CLOSED) return resolve();
    socket.once('close', () => resolve());
    socket.once('error', reject);
  });
  return { stdout, status, ms: performance.now() - started };
}

/** Open `logs -f` streams; close() ends them all. */
export interface Followers {
  readonly count: number;
  close(): Promise<void>;
}

/**
 * Opens `count` follows of a log (`path` with follow=true), each on a connection of its own as each
 * `kubectl logs -f` has, `batch` at a time; resolves once every one has received its first bytes.
 */
export async function openFollowers(
  kubeConfig: KubeConfig,
  path: string,
  count: number,
  batch = 50,
): Promise<Followers> {
  const { server, options } = await requestOptions(kubeConfig);
  const requests: ClientRequest[] = [];
  const responses: IncomingMessage[] = [];
  const openOne = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(new URL(path, server), { ...options, agent: false }, (res) => {
        responses.push(res);
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${path}: HTTP ${res.statusCode}`));
          return;
        }
        res.once('data', () => resolve());
        res.on('error', () => {});
      });
      requests.push(req);
      req.on('error', reject);
      req.end();
    });
  const close = async () => {
    for (const req of requests) req.destroy();
    await Promise.all(responses.map((res) => finished(res).catch(() => {})));
  };
  try {
    for (let opened = 0; opened < count; opened += batch) {
      await Promise.all(Array.from({ length: Math.min(batch, count - opened) }, openOne));
    }
  } catch (error) {
    await close();
    throw error;
  }
  return { count, close };
}

/**
 * `kubectl exec … -- <command>` whose reader waits `stallMs` before it reads, then reads as fast as
 * it can; resolves with the bytes received, kubectl's exit code and the time from start to exit.
 */
export async function slowReaderExec(
  kubectl: string,
  kubeconfig: string,
  namespace: string,
  pod: string,
  command: readonly string[],
  stallMs: number,
): Promise<{ bytes: number; exitCode: number | null; stderr: string; ms: number }> {
  const started = performance.now();
  const child = spawn(
    kubectl,
    [`--kubeconfig=${kubeconfig}`, '-n', namespace, 'exec', pod, '--', ...command],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = once(child, 'exit') as Promise<[number | null]>;
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 4096) stderr += chunk.toString();
  });
  child.stdout.pause();
  await sleep(stallMs);
  let bytes = 0;
  child.stdout.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  // A stream paused explicitly stays paused when a 'data' listener comes.
  child.stdout.resume();
  const [[exitCode]] = await Promise.all([exited, finished(child.stdout)]);
  return { bytes, exitCode, stderr, ms: performance.now() - started };
}
