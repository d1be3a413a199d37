// vitest globalSetup for the real-cluster tests: starts the shared `host` and `remote` clusters once
// for the whole run, and serves a small loopback control endpoint through which test files stop and
// start a cluster or ask for an extra one (a second remote, a second host). All cluster processes stay
// children of this process, so they end with the run, however it ends.
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureBinaries } from './binaries.ts';
import { REAL_NODE_CLUSTER, testClustersDir } from './paths.ts';
import {
  type ClusterHandle,
  type ClusterInfo,
  type ClusterProvider,
  DockerProvider,
  LocalProvider,
  selectedRuntime,
} from './provider.ts';
import { ensureRealNodeArtifacts } from './realnode/artifacts.ts';
import { realNodeSupport } from './realnode/machine.ts';
import { type ClusterRole, type ShapeOptions, shapeFor } from './shapes.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    clusters: Record<string, ClusterInfo>;
    clusterControl: string;
    kubectlBinary: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const binaries = await ensureBinaries();
  const root = testClustersDir();
  // Built (or found in the cache) before any test asks for the real node, with progress on a cold machine.
  if (realNodeSupport(join(root, REAL_NODE_CLUSTER)).ok) await ensureRealNodeArtifacts();
  const provider: ClusterProvider =
    selectedRuntime() === 'docker' ? new DockerProvider(root) : new LocalProvider(root, binaries);

  const handles = new Map<string, ClusterHandle>();
  const starting = new Map<string, Promise<ClusterHandle>>();
  const ensure = (name: string, role: ClusterRole, options: ShapeOptions = {}): Promise<ClusterHandle> => {
    let pending = starting.get(name);
    if (!pending) {
      pending = provider.create(shapeFor(name, role, options)).then((handle) => {
        handles.set(name, handle);
        return handle;
      });
      starting.set(name, pending);
    }
    return pending;
  };

  const teardown = async () => {
    await new Promise((resolve) => server?.close(resolve));
    await Promise.allSettled([...handles.values()].map((handle) => handle.destroy()));
  };
  let server: Server | undefined;
  try {
    const started = Date.now();
    await Promise.all([ensure('host', 'host'), ensure('remote', 'remote')]);
    process.stderr.write(`spillway: test clusters host and remote ready in ${Date.now() - started} ms\n`);
    server = await startControlServer(root, handles, ensure);
  } catch (error) {
    await teardown();
    throw error;
  }
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('control server has no port');
  project.provide('clusterControl', `http://127.0.0.1:${address.port}`);
  project.provide('clusters', Object.fromEntries([...handles].map(([name, handle]) => [name, handle.info])));
  project.provide('kubectlBinary', binaries.kubectl);
  return teardown;
}

function startControlServer(
  root: string,
  handles: Map<string, ClusterHandle>,
  ensure: (name: string, role: ClusterRole, options: ShapeOptions) => Promise<ClusterHandle>,
): Promise<Server> {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const match = /^\/clusters\/([a-z0-9-]+)\/(ensure|stop|start)$/.exec(url.pathname);
    try {
      if (req.method !== 'POST' || !match) throw Object.assign(new Error('not found'), { status: 404 });
      const [, name = '', action] = match;
      if (action === 'ensure') {
        const role = url.searchParams.get('role');
        if (role !== 'host' && role !== 'remote') throw Object.assign(new Error('bad role'), { status: 400 });
        const flag = (key: string) => url.searchParams.get(key) === 'true';
        const options: ShapeOptions = {
          verifyKubeletCertificates: flag('verifyKubeletCertificates'),
          realNode: flag('realNode'),
          answerEveryPod: flag('answerEveryPod'),
        };
        if (options.realNode) {
          const support = realNodeSupport(join(root, name));
          if (!support.ok) throw Object.assign(new Error(`no real node: ${support.reason}`), { status: 503 });
        }
        res.end(JSON.stringify((await ensure(name, role, options)).info));
        return;
      }
      const handle = handles.get(name);
      if (!handle) throw Object.assign(new Error(`no cluster ${name}`), { status: 404 });
      await (action === 'stop' ? handle.stop() : handle.start());
      res.end(JSON.stringify(handle.info));
    } catch (error) {
      res.statusCode = (error as { status?: number }).status ?? 500;
      res.end(JSON.stringify({ error: String(error), cause: String((error as Error).cause ?? '') }));
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}
