// One local Kubernetes cluster made of real processes: etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok, all on 127.0.0.1 and free ports. Its directory keeps the PKI, etcd data,
// logs, a state file and the admin kubeconfig, so it can be stopped and started again with its data,
// and found again by another process (`npm run clusters -- stop remote`).
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Binaries, ensureBinaries } from './binaries.ts';
import {
  bootstrapCluster,
  registerMetricsServer,
  releaseSimulatedNodeLeases,
  waitForApiserver,
  waitForEtcd,
  waitForNodesReady,
} from './bootstrap.ts';
import { adminKubeconfig, ensureClusterPki } from './cluster-pki.ts';
import { type ClusterPorts, type ComponentName, componentSpecs } from './components.ts';
import { isAlive } from './lock.ts';
import { freePorts } from './ports.ts';
import { type ProcessMode, startProcess, stopProcess } from './processes.ts';
import { ensureRealNodeArtifacts } from './realnode/artifacts.ts';
import { type RealNodeState, startRealNode, stopRealNode } from './realnode/node.ts';
import { type ClusterShape, regionOf } from './shapes.ts';

/** Who deleted or evicted which pod, once per request (the chaos suite explains its failures with it). */
const AUDIT_POD_DELETIONS = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [delete, deletecollection]
    resources: [{ group: '', resources: [pods] }]
  - level: Metadata
    verbs: [create]
    resources: [{ group: '', resources: [pods/eviction] }]
  - level: None
`;

interface ClusterState {
  readonly shape: ClusterShape;
  ports: ClusterPorts;
  readonly podCidr: string;
  pids: Partial<Record<ComponentName, number>>;
  bootstrapped: boolean;
  /** The real node's port and processes, when the shape has one and it runs. */
  realNode?: RealNodeState;
}

export interface ComponentStatus {
  readonly name: ComponentName | 'containerd' | 'kubelet';
  readonly pid: number | undefined;
  readonly running: boolean;
}

/** Pod IP ranges kwok assigns; each cluster gets its own so delegate and host pod IPs differ visibly. */
let podCidrCounter = 0;
function nextPodCidr(): string {
  return `10.${(244 + podCidrCounter++) % 255}.0.1/16`;
}

export class LocalCluster {
  readonly dir: string;
  private readonly state: ClusterState;
  private readonly binaries: Binaries;

  private constructor(dir: string, state: ClusterState, binaries: Binaries) {
    this.dir = dir;
    this.state = state;
    this.binaries = binaries;
  }

  get name(): string {
    return this.state.shape.name;
  }
  get shape(): ClusterShape {
    return this.state.shape;
  }
  get ports(): ClusterPorts {
    return this.state.ports;
  }
  get kubeconfigPath(): string {
    return join(this.dir, 'kubeconfig');
  }
  get server(): string {
    return `https://127.0.0.1:${this.state.ports.apiserver}`;
  }
  get logDir(): string {
    return join(this.dir, 'logs');
  }
  /** The API server's audit log of pod deletions (shapes with auditPodDeletions). */
  get auditLogPath(): string {
    return join(this.logDir, 'audit.log');
  }
  get caCertPath(): string {
    return join(this.dir, 'pki', 'ca.crt');
  }
  get caKeyPath(): string {
    return join(this.dir, 'pki', 'ca.key');
  }

  /** Prepares a new cluster directory (wiping any old one); call {@link start} to run it. */
  static async create(dir: string, shape: ClusterShape, binaries?: Binaries): Promise<LocalCluster> {
    const existing = existsSync(join(dir, 'state.json')) ? await LocalCluster.load(dir, binaries) : undefined;
    await existing?.destroy();
    await mkdir(join(dir, 'logs'), { recursive: true });
    const [etcdClient, etcdPeer, apiserver, kwok, metricsServer] = (await freePorts(5)) as [
      number,
      number,
      number,
      number,
      number,
    ];
    const state: ClusterState = {
      shape,
      ports: { etcdClient, etcdPeer, apiserver, kwok, metricsServer },
      podCidr: nextPodCidr(),
      pids: {},
      bootstrapped: false,
    };
    const cluster = new LocalCluster(dir, state, binaries ?? (await ensureBinaries()));
    await cluster.saveState();
    return cluster;
  }

  /** Finds a cluster another process created, from its state file. */
  static async load(dir: string, binaries?: Binaries): Promise<LocalCluster> {
    const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as ClusterState;
    return new LocalCluster(dir, state, binaries ?? (await ensureBinaries()));
  }

  private async saveState(): Promise<void> {
    await writeFile(join(this.dir, 'state.json'), `${JSON.stringify(this.state, null, 2)}\n`);
  }

  /** Starts every component (again, after {@link stop}) and waits until the cluster serves and its nodes are Ready. */
  async start(mode: ProcessMode = 'attached'): Promise<void> {
    if (this.components().some((c) => c.running)) await this.stop();
    // Processes that died without stop() (a reboot, a kill) leave their pids behind: forget them.
    this.state.pids = {};
    const pki = await ensureClusterPki(join(this.dir, 'pki'), this.name);
    // A cluster created before every cluster ran metrics-server gets its port now.
    const [metricsServerPort] = this.state.ports.metricsServer
      ? [this.state.ports.metricsServer]
      : await freePorts(1);
    if (!metricsServerPort) throw new Error('no free port for metrics-server');
    this.state.ports = { ...this.state.ports, metricsServer: metricsServerPort };
    await writeFile(this.kubeconfigPath, await adminKubeconfig(pki, this.name, this.server), { mode: 0o600 });
    const launch = (name: ComponentName) => this.launch(name, mode);
    try {
      await launch('etcd');
      await waitForEtcd(this.state.ports.etcdClient, this.failureProbe('etcd'));
      await launch('kube-apiserver');
      await waitForApiserver(this.kubeconfigPath, this.failureProbe('kube-apiserver'));
      if (!this.state.bootstrapped) {
        await bootstrapCluster(this.kubeconfigPath, this.binaries, this.state.shape, this.dir);
      } else {
        await releaseSimulatedNodeLeases(this.kubeconfigPath);
      }
      await launch('kube-controller-manager');
      await launch('kube-scheduler');
      await launch('kwok');
      // Every cluster runs metrics-server, as most real clusters do: on a host, `kubectl top` reaches
      // Spillway's virtual nodes through it; on a remote, Spillway reads the delegates' usage from it.
      await registerMetricsServer(this.kubeconfigPath, this.binaries, metricsServerPort);
      await launch('metrics-server');
      await waitForNodesReady(this.kubeconfigPath, this.state.shape, this.failureProbe('kwok'));
      if (this.state.shape.realNode) await this.startRealNode(pki, mode);
      this.state.bootstrapped = true;
      await this.saveState();
    } catch (cause) {
      await this.stop();
      throw new Error(`starting cluster ${this.name} failed (logs in ${this.logDir})`, { cause });
    }
  }

  private async auditArgs(): Promise<string[]> {
    const policy = join(this.dir, 'audit-policy.yaml');
    await writeFile(policy, AUDIT_POD_DELETIONS);
    return [
      `--audit-policy-file=${policy}`,
      `--audit-log-path=${this.auditLogPath}`,
      '--audit-log-format=json',
    ];
  }

  private async launch(name: ComponentName, mode: ProcessMode): Promise<void> {
    const pki = await ensureClusterPki(join(this.dir, 'pki'), this.name);
    const spec = componentSpecs({
      clusterName: this.name,
      dir: this.dir,
      ports: this.state.ports,
      pki,
      binaries: this.binaries,
      kubeconfig: this.kubeconfigPath,
      verifyKubeletCertificates: this.state.shape.verifyKubeletCertificates ?? false,
      podCidr: this.state.podCidr,
      extraApiserverArgs: this.state.shape.auditPodDeletions ? await this.auditArgs() : [],
    }).find((s) => s.name === name);
    if (!spec) throw new Error(`no component ${name}`);
    const { pid } = startProcess({
      harness: this.binaries.k8s,
      binary: spec.binary,
      args: spec.args,
      logFile: join(this.logDir, `${name}.log`),
      mode,
    });
    this.state.pids[name] = pid;
    await this.saveState();
  }

  /**
   * Restarts one component of a running cluster, the others untouched (an API server restart drill,
   * or a component that died), and waits until etcd or the API server serves again.
   */
  async restart(name: ComponentName, mode: ProcessMode = 'attached'): Promise<void> {
    const pid = this.state.pids[name];
    if (pid !== undefined) await stopProcess(pid);
    await this.launch(name, mode);
    // Only the restarted component can fail this wait: others may exit meanwhile (a kube-scheduler
    // whose API server went away) and are the caller's to see to.
    const probe = this.failureProbe(name, [name]);
    if (name === 'etcd') await waitForEtcd(this.state.ports.etcdClient, probe);
    if (name === 'kube-apiserver') await waitForApiserver(this.kubeconfigPath, probe);
  }

  /**
   * Compacts etcd's history up to its current revision (through etcd's own HTTP gateway), so that
   * watches resuming from before it get 410 Gone. Returns the revision compacted to.
   */
  async compact(): Promise<number> {
    const url = (path: string) => `http://127.0.0.1:${this.state.ports.etcdClient}${path}`;
    const post = async (path: string, body: unknown) => {
      const response = await fetch(url(path), { method: 'POST', body: JSON.stringify(body) });
      if (!response.ok) throw new Error(`etcd ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as { header?: { revision?: string } };
    };
    // Any range answers with the store's current revision in its header.
    const { header } = await post('/v3/kv/range', { key: Buffer.from('/').toString('base64') });
    const revision = Number(header?.revision);
    if (!Number.isFinite(revision)) throw new Error('etcd: no current revision');
    await post('/v3/kv/compaction', { revision, physical: true });
    return revision;
  }

  private async startRealNode(pki: Awaited<ReturnType<typeof ensureClusterPki>>, mode: ProcessMode) {
    const region = regionOf(this.name);
    this.state.realNode = await startRealNode({
      clusterDir: this.dir,
      pki,
      apiserverPort: this.state.ports.apiserver,
      kubeconfig: this.kubeconfigPath,
      harness: this.binaries.k8s,
      artifacts: await ensureRealNodeArtifacts(),
      mode,
      labels: { 'topology.kubernetes.io/region': region, 'topology.kubernetes.io/zone': `${region}-real` },
      ...(this.state.realNode ? { kubeletPort: this.state.realNode.kubeletPort } : {}),
    });
    await this.saveState();
  }

  /** A check the readiness waits call so a component that crashed fails fast, naming its log. */
  private failureProbe(name: ComponentName, only?: readonly ComponentName[]): () => void {
    return () => {
      for (const [component, pid] of Object.entries(this.state.pids)) {
        if (only && !only.includes(component as ComponentName)) continue;
        if (pid !== undefined && !isAlive(pid)) {
          throw new Error(
            `${component} exited; see ${join(this.logDir, `${component}.log`)} (waiting for ${name})`,
          );
        }
      }
    };
  }

  /** Stops every process and keeps the data: {@link start} brings the same cluster back. */
  async stop(): Promise<void> {
    if (this.state.shape.realNode) {
      await stopRealNode(this.dir, this.state.realNode);
      if (this.state.realNode) this.state.realNode = { ...this.state.realNode, pids: {} };
    }
    // Clients first, the store last, as a real control plane shuts down.
    const order: ComponentName[] = [
      'metrics-server',
      'kwok',
      'kube-scheduler',
      'kube-controller-manager',
      'kube-apiserver',
      'etcd',
    ];
    for (const name of order) {
      const pid = this.state.pids[name];
      if (pid !== undefined) await stopProcess(pid);
      delete this.state.pids[name];
    }
    if (existsSync(this.dir)) await this.saveState();
  }

  /** Stops the cluster and removes its directory. */
  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  components(): ComponentStatus[] {
    const names: ComponentName[] = [
      'etcd',
      'kube-apiserver',
      'kube-controller-manager',
      'kube-scheduler',
      'kwok',
      'metrics-server',
    ];
    const components: ComponentStatus[] = names.map((name) => {
      const pid = this.state.pids[name];
      return { name, pid, running: pid !== undefined && isAlive(pid) };
    });
    if (this.state.shape.realNode) {
      for (const name of ['containerd', 'kubelet'] as const) {
        const pid = this.state.realNode?.pids[name];
        components.push({ name, pid, running: pid !== undefined && isAlive(pid) });
      }
    }
    return components;
  }

  isRunning(): boolean {
    return this.components().every((c) => c.running);
  }
}
