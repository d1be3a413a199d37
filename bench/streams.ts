// `npm run bench -- streams`: what Spillway's kubelet API costs a stream, next to the same stream
// taken straight from the remote in the same run: a large log read whole through the host API server
// (host API server → Spillway's kubelet API → remote API server → KWOK) and from the remote API server
// for the delegate, and `echo hi` exec round trips (client-node's WebSocket `Exec`) both ways.
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, openSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { NODE_FLAGS } from '../src/kubelet/runtime-flags.ts';
import { kubeconfigPathOf, up } from '../test/cluster/cli.ts';
import { freePort } from '../test/cluster/ports.ts';
import { type Kube, kube } from '../test/support/kube.ts';
import { criLine, kwokForNamespace, removeKwokForNamespace } from '../test/support/kwok.ts';
import { waitFor } from '../test/support/wait.ts';
import { pinnedSpec, waitForRunning } from '../test/support/workloads.ts';
import { cpuSeconds } from './lib/process-stats.ts';
import { formatTable, percentile } from './lib/stats.ts';
import { type TimedRead, timedExec, timedGet } from './lib/streams.ts';

export interface StreamsOptions {
  /** Size of the CRI log file KWOK serves, in MiB. */
  readonly logMib: number;
  /** Whole-log reads per path. */
  readonly reads: number;
  /** Sequential `echo hi` execs per path. */
  readonly execs: number;
}

const root = join(import.meta.dirname, '..');
const remoteName = 'bench-streams';
const nodeName = 'spillway-bench-streams';
const podName = 'app';
const container = 'main';
const benchNamespace = /^bench-streams-\d+$/;
const EXEC_WARMUP = 5;

/** Namespaces (and their KWOK objects) an aborted earlier run left behind. */
async function removeLeftovers(host: Kube, remote: Kube): Promise<void> {
  const stale = new Set<string>();
  for (const k of [host, remote]) {
    for (const ns of (await k.core.listNamespace()).items) {
      const name = ns.metadata?.name ?? '';
      if (!benchNamespace.test(name)) continue;
      stale.add(name);
      // Host pods of a stopped virtual node have no kubelet to finalise them: force them away.
      await k.core.deleteCollectionNamespacedPod({ namespace: name, gracePeriodSeconds: 0 }).catch(() => {});
      await k.core.deleteNamespace({ name }).catch(() => {});
    }
  }
  for (const name of stale) await removeKwokForNamespace(remote, name);
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  if (stale.size > 0) console.log(`removed leftovers of an earlier run: ${[...stale].join(', ')}`);
}

/** A CRI log of at least `mib` MiB, lines of about 130 bytes a millisecond apart; returns its size. */
async function writeCriLog(file: string, mib: number): Promise<number> {
  const target = mib * 2 ** 20;
  const out = createWriteStream(file);
  const start = Date.now() - 3600_000;
  const filler = 'x'.repeat(64);
  let size = 0;
  for (let line = 0; size < target; ) {
    let chunk = '';
    for (let i = 0; i < 4096; i++, line++) {
      chunk += criLine(
        new Date(start + line),
        'stdout',
        `line ${line} GET /api/items/${line % 997} ${filler}`,
      );
    }
    size += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return size;
}

function summary(values: readonly number[]) {
  return { p50: percentile(values, 50), p99: percentile(values, 99), min: Math.min(...values) };
}

async function startSpillway(hostPath: string, remotePath: string) {
  const dir = join(root, '.spillway', 'bench-streams');
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const configFile = join(dir, 'spillway.yaml');
  await writeFile(
    configFile,
    stringify({
      hostClusterName: 'bench-streams',
      host: { kubeconfig: hostPath },
      kubelet: { address: '127.0.0.1', port },
      remotes: [{ name: remoteName, kubeconfig: remotePath, nodeName }],
      discovery: { enabled: false },
      logLevel: 'warn',
    }),
  );
  const logFile = join(dir, 'spillway.log');
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, join(root, 'src', 'main.ts'), 'run', '--config', configFile],
    {
      stdio: ['ignore', openSync(logFile, 'w'), openSync(logFile, 'a')],
    },
  );
  return { child, pid: child.pid as number, port, logFile };
}

async function waitForNode(host: Kube, exited: () => string | undefined, logFile: string): Promise<void> {
  for (let i = 0; ; i++) {
    const node = await host.core.readNode({ name: nodeName }).catch(() => undefined);
    // Ready, and the host's node lifecycle controller has lifted any not-ready/unreachable taint.
    const ready = node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    const tainted = node?.spec?.taints?.some((t) => t.key.startsWith('node.kubernetes.io/'));
    if (ready && !tainted) return;
    const exit = exited();
    if (i > 240 || exit) {
      const why = exit
        ? `Spillway exited (${exit})`
        : `Ready ${ready ?? 'unknown'}, taints ${JSON.stringify(node?.spec?.taints ?? [])}`;
      throw new Error(`the virtual node did not become Ready: ${why}; see ${logFile}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

export async function benchStreams(options: StreamsOptions): Promise<void> {
  await up(['host', 'remote']);
  const hostPath = kubeconfigPathOf('host');
  const remotePath = kubeconfigPathOf('remote');
  const host = kube(hostPath);
  const remote = kube(remotePath);
  await removeLeftovers(host, remote);

  const namespace = `bench-streams-${Date.now()}`;
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  await remote.core.createNamespace({ body: { metadata: { name: namespace } } });
  const kwok = await kwokForNamespace(remote, namespace, { logs: '' });
  const spillway = await startSpillway(hostPath, remotePath);
  let exited: string | undefined;
  spillway.child.once('exit', (code, signal) => {
    exited = `code ${code}, signal ${signal}`;
  });
  try {
    console.log(`\n==> a ${options.logMib} MiB CRI log for KWOK to serve`);
    const logFileBytes = await writeCriLog(kwok.logFile, options.logMib);
    console.log(`==> Spillway (pid ${spillway.pid}, kubelet API on 127.0.0.1:${spillway.port})`);
    await waitForNode(host, () => exited, spillway.logFile);
    await host.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: podName, labels: { bench: 'streams' } },
        spec: pinnedSpec(remoteName, {}, { name: container, image: 'busybox' }),
      },
    });
    await waitForRunning(host, namespace, 'bench=streams', 1, 180_000);
    await waitForRunning(remote, namespace, 'bench=streams', 1, 60_000);

    // Logs: alternate the paths so that background load on the shared machine falls on both alike.
    console.log(`==> logs: ${options.reads} whole reads per path`);
    const logPath = `/api/v1/namespaces/${namespace}/pods/${podName}/log?container=${container}`;
    const paths = { host: host.kubeConfig, remote: remote.kubeConfig } as const;
    const logs = { host: [] as TimedRead[], remote: [] as TimedRead[] };
    const logCpuBefore = cpuSeconds(spillway.pid);
    for (let round = 0; round < options.reads; round++) {
      for (const path of round % 2 === 0 ? (['host', 'remote'] as const) : (['remote', 'host'] as const)) {
        const read = await timedGet(paths[path], logPath);
        logs[path].push(read);
        console.log(
          `  ${path}: ${(read.bytes / 2 ** 20).toFixed(1)} MiB in ${(read.ms / 1000).toFixed(2)} s`,
        );
      }
    }
    const logCpu = cpuSeconds(spillway.pid) - logCpuBefore;
    const servedBytes = logs.remote[0]?.bytes ?? 0;
    for (const read of [...logs.host, ...logs.remote]) {
      if (read.bytes !== servedBytes)
        throw new Error(`a log read returned ${read.bytes} bytes, another ${servedBytes}`);
    }
    const mibPerSecond = (reads: readonly TimedRead[]) => reads.map((r) => r.bytes / 2 ** 20 / (r.ms / 1000));

    // Exec: a few unmeasured sessions first (connections, code paths), then alternating sessions.
    console.log(`==> exec: ${options.execs} sequential \`echo hi\` per path (client-node Exec, WebSocket)`);
    const execMs = { host: [] as number[], remote: [] as number[] };
    const execOnce = async (path: 'host' | 'remote') => {
      const result = await timedExec(paths[path], namespace, podName, container, ['echo', 'hi']);
      if (result.stdout !== 'hi\n' || result.status?.status !== 'Success') {
        throw new Error(
          `exec through ${path}: stdout ${JSON.stringify(result.stdout)}, status ${JSON.stringify(result.status)}`,
        );
      }
      return result.ms;
    };
    for (let i = 0; i < EXEC_WARMUP; i++) {
      await execOnce('host');
      await execOnce('remote');
    }
    const execCpuBefore = cpuSeconds(spillway.pid);
    for (let i = 0; i < options.execs; i++) {
      for (const path of i % 2 === 0 ? (['host', 'remote'] as const) : (['remote', 'host'] as const)) {
        execMs[path].push(await execOnce(path));
      }
    }
    const execCpu = cpuSeconds(spillway.pid) - execCpuBefore;

    const result = {
      benchmark: 'streams',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
      options,
      execClient: 'client-node Exec (WebSocket, v5.channel.k8s.io offered first; one connection per exec)',
      logs: {
        fileBytes: logFileBytes,
        servedBytes,
        host: { ...summary(mibPerSecond(logs.host)), samples: logs.host },
        remote: { ...summary(mibPerSecond(logs.remote)), samples: logs.remote },
        spillwayCpuSeconds: logCpu,
      },
      exec: {
        host: { ...summary(execMs.host), samples: execMs.host },
        remote: { ...summary(execMs.remote), samples: execMs.remote },
        spillwayCpuSeconds: execCpu,
      },
    };
    const hostLogs = result.logs.host.p50;
    const remoteLogs = result.logs.remote.p50;
    const rows = [
      ['', 'logs MiB/s p50', 'logs MiB/s min', 'exec p50 ms', 'exec p99 ms', 'Spillway CPU s'],
      [
        'host (via Spillway)',
        hostLogs,
        result.logs.host.min,
        result.exec.host.p50,
        result.exec.host.p99,
        `${logCpu.toFixed(1)} logs, ${execCpu.toFixed(1)} exec`,
      ],
      [
        'remote (direct)',
        remoteLogs,
        result.logs.remote.min,
        result.exec.remote.p50,
        result.exec.remote.p99,
        '-',
      ],
      [
        'host vs remote',
        `${(hostLogs / remoteLogs).toFixed(2)}x`,
        '',
        `+${(result.exec.host.p50 - result.exec.remote.p50).toFixed(1)}`,
        `+${(result.exec.host.p99 - result.exec.remote.p99).toFixed(1)}`,
        '',
      ],
    ];
    console.log(
      `\nlog: ${(logFileBytes / 2 ** 20).toFixed(1)} MiB CRI file, ${(servedBytes / 2 ** 20).toFixed(1)} MiB served per read` +
        ` (${options.reads} reads per path); exec: ${options.execs} per path, client-node Exec over WebSocket`,
    );
    console.log(`\n${formatTable(rows)}\n`);
    await mkdir(join(root, 'bench', 'results'), { recursive: true });
    const file = join(root, 'bench', 'results', `streams-${result.date.replace(/[:.]/g, '-')}.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`written ${file}`);
  } finally {
    // Spillway collects the delegate (also after a failure); wait so the next run starts on a quiet remote.
    await host.core.deleteNamespace({ name: namespace }).catch(() => {});
    await waitFor(
      'the delegate collected',
      async () =>
        (await remote.core.listNamespacedPod({ namespace })).items.length === 0 ? true : undefined,
      { timeoutMs: 120_000, intervalMs: 500 },
    ).catch(() => {});
    if (!exited) {
      spillway.child.kill('SIGTERM');
      await once(spillway.child, 'exit');
    }
    // Whatever a failed run left: host pods with no kubelet to finalise them, the node, the remote side.
    await host.core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 }).catch(() => {});
    await host.core.deleteNode({ name: nodeName }).catch(() => {});
    await remote.core.deleteCollectionNamespacedPod({ namespace, gracePeriodSeconds: 0 }).catch(() => {});
    await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
    await removeKwokForNamespace(remote, namespace);
    await rm(kwok.dir, { recursive: true, force: true });
  }
}
