// Everything a chaos run needs around two real clusters: Spillway's identities from its own manifests
// (ServiceAccount tokens, least privilege), a fault proxy in front of each API server for Spillway's
// connections, Spillway as a process of its own, the observer and the workload.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from '../cluster/ports.ts';
import { applyManifests, serviceAccountKubeconfig } from '../support/manifests.ts';
import { Observer } from './observer.ts';
import { FaultProxy } from './proxy.ts';
import { SpillwayProcess } from './spillway-process.ts';
import { Throttle } from './throttle.ts';
import { Workload } from './workload.ts';

export interface ChaosCluster {
  readonly kubeconfig: string;
  readonly server: string;
  /** The API server's audit log of pod deletions, when it writes one. */
  readonly auditLog?: string;
  /** Restarts the API server and resolves once it serves (absent where the fixture cannot). */
  readonly restartApiserver?: () => Promise<void>;
  /** Compacts etcd to its current revision (absent where the fixture cannot). */
  readonly compactEtcd?: () => Promise<number>;
  /**
   * Starts again any of the cluster's own components that died (not Spillway's doing: the suite
   * measures Spillway, and a dead scheduler would stall every workload); returns their names.
   */
  readonly restartDead?: () => Promise<string[]>;
}

export interface ChaosClusters {
  readonly host: ChaosCluster;
  readonly remote: ChaosCluster;
  readonly kubectl: string;
}

export interface ChaosEnvironment {
  readonly clusters: ChaosClusters;
  readonly hostProxy: FaultProxy;
  readonly remoteProxy: FaultProxy;
  readonly spillway: SpillwayProcess;
  readonly observer: Observer;
  readonly workload: Workload;
  readonly throttle: Throttle;
  readonly namespace: string;
  readonly nodeName: string;
  stop(): Promise<void>;
}

export interface PrepareOptions {
  readonly dir: string;
  readonly suffix: string;
  readonly statefulSets: number;
  readonly maxPods?: number;
}

/** A copy of a kubeconfig whose server is the proxy's. */
async function throughProxy(kubeconfig: string, proxy: FaultProxy, file: string): Promise<string> {
  const config = parse(await readFile(kubeconfig, 'utf8'));
  for (const entry of config.clusters) entry.cluster.server = proxy.url;
  await writeFile(file, stringify(config), { mode: 0o600 });
  return file;
}

export async function prepare(clusters: ChaosClusters, options: PrepareOptions): Promise<ChaosEnvironment> {
  const { dir, suffix } = options;
  await mkdir(dir, { recursive: true });
  const remoteName = `chaos-${suffix}`;
  const nodeName = `spillway-chaos-${suffix}`;
  const namespace = `chaos-${suffix}`;
  await applyManifests(clusters.kubectl, clusters.host.kubeconfig, 'base');
  await applyManifests(clusters.kubectl, clusters.remote.kubeconfig, 'remote');
  const hostProxy = new FaultProxy(clusters.host.server);
  const remoteProxy = new FaultProxy(clusters.remote.server);
  await hostProxy.start();
  await remoteProxy.start();
  const hostToken = await serviceAccountKubeconfig(clusters.kubectl, clusters.host.kubeconfig, '12h');
  const remoteToken = await serviceAccountKubeconfig(clusters.kubectl, clusters.remote.kubeconfig, '12h');
  const config = join(dir, 'spillway.yaml');
  await writeFile(
    config,
    stringify({
      hostClusterName: 'host',
      namespace: 'spillway-system',
      host: { kubeconfig: await throughProxy(hostToken, hostProxy, join(dir, 'host.kubeconfig')) },
      kubelet: { address: '127.0.0.1', port: await freePort() },
      // A port of its own: another Spillway on this machine may hold the default.
      metrics: { port: await freePort() },
      node: { probeIntervalSeconds: 1, remoteUnreachableGraceSeconds: 5, deleteOnShutdown: true },
      discovery: { enabled: false },
      remotes: [
        {
          name: remoteName,
          kubeconfig: await throughProxy(remoteToken, remoteProxy, join(dir, 'remote.kubeconfig')),
          nodeName,
        },
      ],
      logLevel: 'info',
    }),
  );
  const spillway = new SpillwayProcess(config, join(dir, 'spillway.log'));
  const observer = new Observer({
    hostKubeconfig: clusters.host.kubeconfig,
    remoteKubeconfig: clusters.remote.kubeconfig,
    remoteAuditLog: clusters.remote.auditLog,
    namespace,
    nodeName,
  });
  const workload = new Workload({
    hostKubeconfig: clusters.host.kubeconfig,
    namespace,
    remoteName,
    nodeName,
    maxPods: options.maxPods,
  });
  await workload.setup(0);
  await observer.start();
  spillway.start();
  const deadline = Date.now() + 120_000;
  while (!observer.nodeReady() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
  if (!observer.nodeReady()) throw new Error(`virtual node ${nodeName} not Ready after 120 s`);
  for (let i = 0; i < options.statefulSets; i++) await workload.createStatefulSet(`db-${i}`);
  return {
    clusters,
    hostProxy,
    remoteProxy,
    spillway,
    observer,
    workload,
    throttle: new Throttle(clusters.kubectl, clusters.remote.kubeconfig),
    namespace,
    nodeName,
    async stop() {
      await workload.cleanup();
      // Spillway collects the namespace's delegates before it stops (best effort, bounded).
      const until = Date.now() + 60_000;
      while (observer.delegates.objects.size > 0 && Date.now() < until)
        await new Promise((r) => setTimeout(r, 500));
      observer.stop();
      await spillway.stop();
      await hostProxy.close();
      await remoteProxy.close();
    },
  };
}
