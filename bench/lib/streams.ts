// Timed reads and execs against one API server: a GET whose body is counted and dropped (no client
// buffering in the way), and `Exec` sessions over client-node's WebSocket, timed from the request to
// the closed socket.
import { type RequestOptions, request } from 'node:https';
import { Writable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';

export interface TimedRead {
  readonly bytes: number;
  readonly ms: number;
}

/** GETs `path` from the kubeconfig's API server and counts the body's bytes as they arrive. */
export async function timedGet(kubeConfig: KubeConfig, path: string): Promise<TimedRead> {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('the kubeconfig names no cluster');
  const options: RequestOptions = { method: 'GET' };
  await kubeConfig.applyToHTTPSOptions(options);
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
