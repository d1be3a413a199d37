// A real node for a local cluster: containerd, runc and a real kubelet v1.36 in a network namespace
// of their own that holds only `lo` and the pods' bridge. The kubelet and the API server meet through
// relays over unix sockets (socat), each end listening on 127.0.0.1 of its own namespace, so every
// byte stays on this machine: pods cannot reach anything outside the namespace, and nothing outside
// can reach them (the host routes the pod subnet to `unreachable`). The node is named 127.0.0.1 (a
// kubelet refuses a loopback --node-ip, but takes an IP as its hostname and publishes it as the
// InternalIP). Limits: the API server cannot reach pod IPs, so pods/proxy and services/proxy fail;
// no kube-proxy and no cluster DNS run.
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { CertificateAuthority } from '../../../src/tls/pki.ts';
import type { ClusterPki } from '../cluster-pki.ts';
import { isAlive } from '../lock.ts';
import { freePort } from '../ports.ts';
import { type ProcessMode, startProcess, stopProcess } from '../processes.ts';
import type { RealNodeArtifacts } from './artifacts.ts';
import { cniConfig, containerdConfig, kubeletConfig, kubeletKubeconfig, POD_SUBNET } from './config.ts';
import {
  createCgroups,
  isNodeProcess,
  KUBELET_SYSCTLS,
  type MachineRecord,
  NETNS,
  RUN_DIR,
  raiseSysctls,
  readRecord,
  restoreMachine,
  restoreSysctls,
  takeMachine,
  writeRecord,
} from './machine.ts';

const execFileAsync = promisify(execFile);

export const REAL_NODE_NAME = '127.0.0.1';
/** Label of the real node, so tests and people can tell it from simulated ones. */
export const REAL_NODE_LABEL = 'spillway.test/real-node';

export interface RealNodeState {
  readonly kubeletPort: number;
  readonly pids: Partial<Record<RealNodeProcess, number>>;
}

export type RealNodeProcess =
  | 'relay-apiserver-host'
  | 'relay-apiserver-node'
  | 'relay-kubelet-node'
  | 'relay-kubelet-host'
  | 'containerd'
  | 'kubelet';

export interface RealNodeOptions {
  readonly clusterDir: string;
  readonly pki: ClusterPki;
  readonly apiserverPort: number;
  /** The cluster's admin kubeconfig (to wait for the node). */
  readonly kubeconfig: string;
  readonly harness: string;
  readonly artifacts: RealNodeArtifacts;
  readonly mode: ProcessMode;
  readonly labels: Readonly<Record<string, string>>;
  /** A kubelet port used before (a restarted cluster keeps its node's endpoint). */
  readonly kubeletPort?: number;
  readonly report?: (line: string) => void;
}

const nsenter = (args: readonly string[]) => [`--net=/run/netns/${NETNS}`, '--', ...args];

export function realNodeDir(clusterDir: string): string {
  return join(clusterDir, 'real-node');
}

async function run(command: string, args: readonly string[]): Promise<string> {
  try {
    return (await execFileAsync(command, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr.trim()}`, { cause });
  }
}

/** The node's client and serving certificates, issued once by the cluster CA. */
async function ensureNodeCertificates(pki: ClusterPki, dir: string) {
  const files = {
    clientCert: join(dir, 'kubelet-client.crt'),
    clientKey: join(dir, 'kubelet-client.key'),
    servingCert: join(dir, 'kubelet-serving.crt'),
    servingKey: join(dir, 'kubelet-serving.key'),
  };
  if (existsSync(files.servingKey)) return files;
  const ca = await CertificateAuthority.load(
    await readFile(pki.caCert, 'utf8'),
    await readFile(pki.caKey, 'utf8'),
  );
  const identity = { commonName: `system:node:${REAL_NODE_NAME}`, organizations: ['system:nodes'] };
  const client = await ca.issue(identity);
  const serving = await ca.issue({
    ...identity,
    usages: ['server'],
    subjectAltNames: ['127.0.0.1', 'localhost'],
  });
  await writeFile(files.clientCert, client.certificatePem);
  await writeFile(files.clientKey, client.privateKeyPem, { mode: 0o600 });
  await writeFile(files.servingCert, serving.certificatePem);
  await writeFile(files.servingKey, serving.privateKeyPem, { mode: 0o600 });
  return files;
}

async function waitFor(what: string, timeoutMs: number, probe: () => void, check: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    probe();
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`, { cause: last });
}

/** A detached watcher that puts the machine back if this process dies without stopping the node. */
function startReaper(clusterDir: string, logDir: string): void {
  const log = openSync(join(logDir, 'real-node-reaper.log'), 'a');
  try {
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, 'reaper.ts'), String(process.pid), clusterDir],
      { detached: true, stdio: ['ignore', log, log] },
    );
    child.on('error', () => {});
    child.unref();
  } finally {
    closeSync(log);
  }
}

/** Starts the node and waits until it is Ready; on any failure, the machine is put back. */
export async function startRealNode(o: RealNodeOptions): Promise<RealNodeState> {
  const report = o.report ?? ((line: string) => process.stderr.write(`${line}\n`));
  const record = await takeMachine(o.clusterDir, o.mode === 'attached' ? process.pid : undefined);
  const dir = realNodeDir(o.clusterDir);
  const logDir = join(o.clusterDir, 'logs');
  await mkdir(logDir, { recursive: true });
  if (o.mode === 'attached') startReaper(o.clusterDir, logDir);
  const pids: Partial<Record<RealNodeProcess, number>> = {};
  const launch = (name: RealNodeProcess, binary: string, args: readonly string[]) => {
    const { pid } = startProcess({
      harness: o.harness,
      binary,
      args,
      logFile: join(logDir, `${name}.log`),
      mode: o.mode,
    });
    pids[name] = pid;
    record.pids.push(pid);
    writeRecord(record);
  };
  const probe = () => {
    for (const [name, pid] of Object.entries(pids)) {
      if (pid !== undefined && !isAlive(pid)) {
        throw new Error(`${name} exited; see ${join(logDir, `${name}.log`)}`);
      }
    }
  };
  try {
    const paths = {
      nodeDir: dir,
      runDir: RUN_DIR,
      containerdSocket: join(RUN_DIR, 'containerd.sock'),
      cniConfDir: join(dir, 'cni'),
    };
    for (const d of [RUN_DIR, dir, logDir, paths.cniConfDir, join(dir, 'kubelet'), join(dir, 'pod-logs')]) {
      await mkdir(d, { recursive: true });
    }
    raiseSysctls();
    const cgroupRoot = createCgroups();
    // A namespace left by a node that died before recording it is ours too (the name is the node's).
    if (existsSync(`/run/netns/${NETNS}`)) await run('ip', ['netns', 'delete', NETNS]);
    await run('ip', ['netns', 'add', NETNS]);
    await run('ip', ['netns', 'exec', NETNS, 'ip', 'link', 'set', 'lo', 'up']);
    record.routes.push(POD_SUBNET);
    writeRecord(record);
    await run('ip', ['route', 'replace', 'unreachable', POD_SUBNET]);

    const certs = await ensureNodeCertificates(o.pki, dir);
    const kubeletPort = o.kubeletPort ?? (await freePort());
    const snapshotter = readFileSync('/proc/filesystems', 'utf8').includes('overlay')
      ? 'overlayfs'
      : 'native';
    await writeFile(join(dir, 'containerd.toml'), containerdConfig(paths, snapshotter));
    await writeFile(join(paths.cniConfDir, '10-spillway.conflist'), cniConfig(paths));
    await writeFile(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
    await writeFile(
      join(dir, 'kubelet.kubeconfig'),
      kubeletKubeconfig(
        `https://127.0.0.1:${o.apiserverPort}`,
        o.pki.caCert,
        certs.clientCert,
        certs.clientKey,
      ),
    );
    await writeFile(
      join(dir, 'kubelet.yaml'),
      kubeletConfig({
        port: kubeletPort,
        caCert: o.pki.caCert,
        servingCert: certs.servingCert,
        servingKey: certs.servingKey,
        cgroupRoot,
        resolvConf: join(dir, 'resolv.conf'),
        podLogsDir: join(dir, 'pod-logs'),
        containerdSocket: paths.containerdSocket,
      }),
    );

    // API server <- node namespace, and kubelet -> host: each end on its own namespace's loopback.
    const apiSocket = join(RUN_DIR, 'apiserver.sock');
    const kubeletSocket = join(RUN_DIR, 'kubelet.sock');
    launch('relay-apiserver-host', '/usr/bin/socat', [
      `UNIX-LISTEN:${apiSocket},fork,unlink-early`,
      `TCP:127.0.0.1:${o.apiserverPort}`,
    ]);
    launch(
      'relay-apiserver-node',
      '/usr/bin/nsenter',
      nsenter([
        '/usr/bin/socat',
        `TCP-LISTEN:${o.apiserverPort},bind=127.0.0.1,fork,reuseaddr`,
        `UNIX-CONNECT:${apiSocket}`,
      ]),
    );
    launch(
      'relay-kubelet-node',
      '/usr/bin/nsenter',
      nsenter([
        '/usr/bin/socat',
        `UNIX-LISTEN:${kubeletSocket},fork,unlink-early`,
        `TCP:127.0.0.1:${kubeletPort}`,
      ]),
    );
    launch('relay-kubelet-host', '/usr/bin/socat', [
      `TCP-LISTEN:${kubeletPort},bind=127.0.0.1,fork,reuseaddr`,
      `UNIX-CONNECT:${kubeletSocket}`,
    ]);

    launch(
      'containerd',
      '/usr/bin/nsenter',
      nsenter(['/usr/bin/containerd', '--config', join(dir, 'containerd.toml')]),
    );
    const ctr = (args: readonly string[]) =>
      run('/usr/bin/ctr', ['--address', paths.containerdSocket, '-n', 'k8s.io', ...args]);
    await waitFor('containerd', 60_000, probe, async () => {
      await ctr(['version']);
      return true;
    });
    const present = await ctr(['images', 'ls', '-q']);
    for (const image of o.artifacts.images) {
      if (present.split('\n').includes(image.name)) continue;
      report(`spillway: importing ${image.name} into the real node`);
      await ctr(['images', 'import', '--no-unpack=false', image.archive]);
    }

    launch(
      'kubelet',
      '/usr/bin/nsenter',
      nsenter([
        o.artifacts.kubelet,
        `--config=${join(dir, 'kubelet.yaml')}`,
        `--kubeconfig=${join(dir, 'kubelet.kubeconfig')}`,
        `--root-dir=${join(dir, 'kubelet')}`,
        `--hostname-override=${REAL_NODE_NAME}`,
        `--node-labels=${Object.entries({ ...o.labels, [REAL_NODE_LABEL]: 'true' })
          .map(([k, v]) => `${k}=${v}`)
          .join(',')}`,
        '--v=1',
      ]),
    );
    const kc = new KubeConfig();
    kc.loadFromFile(o.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    await waitFor(`node ${REAL_NODE_NAME} Ready`, 120_000, probe, async () => {
      const node = await core.readNode({ name: REAL_NODE_NAME });
      return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    });
    // The kubelet set its kernel tunables (panic on oops among them) once at start: put them back.
    restoreSysctls(record, KUBELET_SYSCTLS);
    return { kubeletPort, pids };
  } catch (error) {
    await restoreMachine(readRecord() ?? record, [dir]);
    throw error;
  }
}

/** Stops the node: the kubelet first, then every container, containerd and the relays; the machine is put back. */
export async function stopRealNode(clusterDir: string, state: RealNodeState | undefined): Promise<void> {
  const record: MachineRecord | undefined = readRecord();
  const kubelet = state?.pids.kubelet;
  // The kubelet first, gracefully, so it stops writing pod statuses; then everything else goes.
  if (kubelet !== undefined && isNodeProcess(kubelet, clusterDir)) await stopProcess(kubelet);
  if (record && record.owner === clusterDir) await restoreMachine(record, [realNodeDir(clusterDir)]);
}
