// Where test clusters come from: local processes (the default, and what CI uses), or k3s containers
// through @testcontainers/k3s on machines with a Docker engine (SPILLWAY_TEST_RUNTIME=docker).
import { join } from 'node:path';
import type { Binaries } from './binaries.ts';
import { LocalCluster } from './cluster.ts';
import type { ClusterRole, ClusterShape } from './shapes.ts';

/** What a test needs to know about a cluster; plain data, so it crosses from global setup to test files. */
export interface ClusterInfo {
  readonly name: string;
  readonly role: ClusterRole;
  readonly runtime: 'local' | 'docker';
  readonly kubeconfig: string;
  readonly server: string;
  /** The cluster CA (certificate and key), for tests that issue client certificates. */
  readonly caCert?: string;
  readonly caKey?: string;
}

export interface ClusterHandle {
  readonly info: ClusterInfo;
  /** Halts the control plane, keeping its data. */
  stop(): Promise<void>;
  /** Brings a stopped control plane back with the same data, address and credentials. */
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export interface ClusterProvider {
  create(shape: ClusterShape): Promise<ClusterHandle>;
}

export function selectedRuntime(): 'local' | 'docker' {
  const runtime = process.env.SPILLWAY_TEST_RUNTIME ?? 'local';
  if (runtime !== 'local' && runtime !== 'docker') {
    throw new Error(`SPILLWAY_TEST_RUNTIME must be "local" or "docker", not "${runtime}"`);
  }
  return runtime;
}

export class LocalProvider implements ClusterProvider {
  private readonly root: string;
  private readonly binaries: Binaries;

  constructor(root: string, binaries: Binaries) {
    this.root = root;
    this.binaries = binaries;
  }

  async create(shape: ClusterShape): Promise<ClusterHandle> {
    const cluster = await LocalCluster.create(join(this.root, shape.name), shape, this.binaries);
    await cluster.start('attached');
    return {
      info: {
        name: shape.name,
        role: shape.role,
        runtime: 'local',
        kubeconfig: cluster.kubeconfigPath,
        server: cluster.server,
        caCert: cluster.caCertPath,
        caKey: cluster.caKeyPath,
      },
      stop: () => cluster.stop(),
      start: () => cluster.start('attached'),
      destroy: () => cluster.destroy(),
    };
  }
}

/**
 * k3s in a container. Its kubelet is real (images are pulled) and it has no kwok, so the kwok-specific
 * fixtures (simulated logs and exec) are not available; the node shapes are what k3s brings.
 */
export class DockerProvider implements ClusterProvider {
  private readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async create(shape: ClusterShape): Promise<ClusterHandle> {
    const { K3sContainer } = await import('@testcontainers/k3s');
    const { mkdir, writeFile } = await import('node:fs/promises');
    const container = await new K3sContainer('rancher/k3s:v1.36.2-k3s1').start();
    const dir = join(this.root, shape.name);
    await mkdir(dir, { recursive: true });
    const kubeconfig = join(dir, 'kubeconfig');
    const content = container.getKubeConfig();
    await writeFile(kubeconfig, content, { mode: 0o600 });
    const server = /server:\s*(\S+)/.exec(content)?.[1] ?? '';
    return {
      info: { name: shape.name, role: shape.role, runtime: 'docker', kubeconfig, server },
      stop: async () => {
        await container.exec(['sh', '-c', 'kill -STOP 1']);
      },
      start: async () => {
        await container.exec(['sh', '-c', 'kill -CONT 1']);
      },
      destroy: async () => {
        await container.stop();
      },
    };
  }
}
