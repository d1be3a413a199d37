// `npm run bench -- streams`: what Spillway's kubelet API costs a stream, each figure next to the same
// stream taken straight from the remote in the same run. Through the host a stream goes host API
// server → Spillway's kubelet API → remote API server → KWOK; directly, remote API server → KWOK.
//   logs   whole reads of a large CRI log (MiB/s)
//   exec   sequential `echo hi` round trips (client-node's WebSocket Exec), and where Spillway's
//          share of the time goes (its per-session timings, logged at debug level)
//   idle   memory per idle `logs -f` with many open at once
//   slow   memory while a reader that waits before reading takes a ≥ 300 MB exec output
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, statSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import { ensureBinaries } from '../test/cluster/binaries.ts';
import { criLine } from '../test/support/kwok.ts';
import { raiseSysctl } from '../test/support/sysctl.ts';
import { waitFor } from '../test/support/wait.ts';
import { restingRss, scrapeMetric } from './lib/memory.ts';
import { medianPhases, sessionPhases } from './lib/phases.ts';
import { cpuSeconds, sampleRss } from './lib/process-stats.ts';
import { formatTable, percentile } from './lib/stats.ts';
import { openFollowers, slowReaderExec, type TimedRead, timedExec, timedGet } from './lib/streams.ts';
import { CONTAINER, FLOOR_POD, POD, type StreamsEnv, startStreamsEnv } from './lib/streams-env.ts';

export const SECTIONS = ['logs', 'exec', 'idle', 'slow'] as const;
export type Section = (typeof SECTIONS)[number];

export interface StreamsOptions {
  readonly sections: readonly Section[];
  /** Size of the CRI log file KWOK serves, in MiB. */
  readonly logMib: number;
  /** Whole-log reads per path. */
  readonly reads: number;
  /** Sequential `echo hi` execs per path. */
  readonly execs: number;
  /** Idle `logs -f` sessions open at once, per path. */
  readonly idle: number;
  /** The slow reader's command prints `seq 1 N`: N = 38,000,000 is 330,888,897 bytes. */
  readonly seqLines: number;
  /** How long the slow reader waits before it reads. */
  readonly stallSeconds: number;
}

type Path = 'host' | 'remote';
/** The ways to a stream: through Spillway, the remote directly, and the floor (see lib/streams-env.ts). */
type Way = Path | 'floor';
interface Target {
  readonly kubeConfig: KubeConfig;
  readonly pod: string;
}
type Row = (string | number)[];
const MiB = 2 ** 20;
const EXEC_WARMUP = 5;
const root = join(import.meta.dirname, '..');

/** A CRI log of at least `mib` MiB, lines of about 130 bytes a millisecond apart; returns its size. */
async function writeCriLog(file: string, mib: number): Promise<number> {
  const target = mib * MiB;
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

/** Every way in turn, rotating which goes first, so that background load falls on all alike. */
function inTurn<T>(ways: readonly T[], round: number): readonly T[] {
  const first = round % ways.length;
  return [...ways.slice(first), ...ways.slice(0, first)];
}

const WAYS: readonly Way[] = ['host', 'remote', 'floor'];

function targetsOf(env: StreamsEnv): Record<Way, Target> {
  return {
    host: { kubeConfig: env.host.kubeConfig, pod: POD },
    remote: { kubeConfig: env.remote.kubeConfig, pod: POD },
    floor: { kubeConfig: env.host.kubeConfig, pod: FLOOR_POD },
  };
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const mib = (bytes: number) => `${bytes >= 0 ? '+' : ''}${(bytes / MiB).toFixed(1)} MiB`;

async function benchLogs(env: StreamsEnv, options: StreamsOptions) {
  console.log(`\n==> logs: a ${options.logMib} MiB CRI log, ${options.reads} whole reads per path`);
  const fileBytes = await writeCriLog(env.kwok.logFile, options.logMib);
  await copyFile(env.kwok.logFile, env.hostKwok.logFile);
  const targets = targetsOf(env);
  const reads: Record<Way, TimedRead[]> = { host: [], remote: [], floor: [] };
  const cpuBefore = cpuSeconds(env.spillway.pid);
  for (let round = 0; round < options.reads; round++) {
    for (const way of inTurn(WAYS, round)) {
      const { kubeConfig, pod } = targets[way];
      const read = await timedGet(
        kubeConfig,
        `/api/v1/namespaces/${env.namespace}/pods/${pod}/log?container=${CONTAINER}`,
      );
      reads[way].push(read);
      console.log(`  ${way}: ${(read.bytes / MiB).toFixed(1)} MiB in ${(read.ms / 1000).toFixed(2)} s`);
    }
  }
  const spillwayCpuSeconds = cpuSeconds(env.spillway.pid) - cpuBefore;
  const servedBytes = reads.remote[0]?.bytes ?? 0;
  for (const read of Object.values(reads).flat()) {
    if (read.bytes !== servedBytes)
      throw new Error(`a log read returned ${read.bytes} bytes, another ${servedBytes}`);
  }
  const rate = (list: readonly TimedRead[]) => summary(list.map((r) => r.bytes / MiB / (r.ms / 1000)));
  const result = {
    fileBytes,
    servedBytes,
    host: { ...rate(reads.host), samples: reads.host },
    remote: { ...rate(reads.remote), samples: reads.remote },
    floor: { ...rate(reads.floor), samples: reads.floor },
    spillwayCpuSeconds,
  };
  const rows: Row[] = [
    [
      'logs MiB/s (p50)',
      result.host.p50,
      result.remote.p50,
      result.floor.p50,
      `${(result.host.p50 / result.remote.p50).toFixed(2)}x`,
      '≥ 0.9x',
    ],
    ['logs MiB/s (slowest)', result.host.min, result.remote.min, result.floor.min, '', ''],
  ];
  return { result, rows };
}

async function benchExec(env: StreamsEnv, options: StreamsOptions) {
  console.log(`\n==> exec: ${options.execs} sequential \`echo hi\` per path (client-node Exec, WebSocket)`);
  const targets = targetsOf(env);
  const execOnce = async (way: Way) => {
    const { kubeConfig, pod } = targets[way];
    const result = await timedExec(kubeConfig, env.namespace, pod, CONTAINER, ['echo', 'hi']);
    if (result.stdout !== 'hi\n' || result.status?.status !== 'Success') {
      throw new Error(
        `exec through ${way}: stdout ${JSON.stringify(result.stdout)}, status ${JSON.stringify(result.status)}`,
      );
    }
    return result.ms;
  };
  // A few unmeasured sessions first (connections, code paths).
  for (let i = 0; i < EXEC_WARMUP; i++) for (const way of inTurn(WAYS, i)) await execOnce(way);
  const logFrom = statSync(env.spillway.logFile).size;
  const ms: Record<Way, number[]> = { host: [], remote: [], floor: [] };
  const cpuBefore = cpuSeconds(env.spillway.pid);
  for (let i = 0; i < options.execs; i++)
    for (const way of inTurn(WAYS, i)) ms[way].push(await execOnce(way));
  const spillwayCpuSeconds = cpuSeconds(env.spillway.pid) - cpuBefore;
  const phases = medianPhases(await sessionPhases(env.spillway.logFile, logFrom));
  const result = {
    client: 'client-node Exec (WebSocket, v5.channel.k8s.io offered first; one connection per exec)',
    host: { ...summary(ms.host), samples: ms.host },
    remote: { ...summary(ms.remote), samples: ms.remote },
    floor: { ...summary(ms.floor), samples: ms.floor },
    spillwayCpuSeconds,
    spillwayPhasesMedianMs: phases,
  };
  const added = (a: number, b: number) => `+${(a - b).toFixed(1)}`;
  const rows: Row[] = [
    [
      'exec ms (p50)',
      result.host.p50,
      result.remote.p50,
      result.floor.p50,
      `${added(result.host.p50, result.remote.p50)} (vs floor ${added(result.host.p50, result.floor.p50)})`,
      'added ≤ 5',
    ],
    [
      'exec ms (p99)',
      result.host.p99,
      result.remote.p99,
      result.floor.p99,
      `${added(result.host.p99, result.remote.p99)} (vs floor ${added(result.host.p99, result.floor.p99)})`,
      '',
    ],
  ];
  console.log(
    `  Spillway's share, median ms from its TCP accept: ${Object.entries(phases)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  return { result, rows };
}

/** Opens `count` followers on `kubeConfig`'s API server, and reports how the watched processes' memory grew. */
async function idleFollowers(
  env: StreamsEnv,
  kubeConfig: KubeConfig,
  count: number,
  pids: Record<string, number>,
  sessions?: () => Promise<number>,
) {
  const before = Object.fromEntries(
    await Promise.all(
      Object.entries(pids).map(async ([name, pid]) => [name, await restingRss(pid)] as const),
    ),
  );
  const heapBefore = await scrapeMetric(env.metricsUrl, 'spillway_nodejs_heap_size_used_bytes');
  const started = performance.now();
  const logPath = `/api/v1/namespaces/${env.namespace}/pods/${POD}/log?container=${CONTAINER}&follow=true&tailLines=1`;
  const followers = await openFollowers(kubeConfig, logPath, count);
  const openSeconds = (performance.now() - started) / 1000;
  try {
    if (sessions)
      await waitFor(`${count} sessions open`, async () => ((await sessions()) >= count ? true : undefined));
    await sleep(5000);
    const after = Object.fromEntries(
      await Promise.all(
        Object.entries(pids).map(async ([name, pid]) => [name, await restingRss(pid)] as const),
      ),
    );
    const heapAfter = await scrapeMetric(env.metricsUrl, 'spillway_nodejs_heap_size_used_bytes');
    const perSession = Object.fromEntries(
      Object.keys(pids).map((name) => [name, ((after[name] as number) - (before[name] as number)) / count]),
    );
    return {
      openSeconds,
      rssBefore: before,
      rssAfter: after,
      perSessionBytes: perSession,
      spillwayHeapGrowthBytes: heapAfter - heapBefore,
    };
  } finally {
    await followers.close();
    if (sessions)
      await waitFor('the sessions closed', async () => ((await sessions()) === 0 ? true : undefined));
  }
}

async function benchIdle(env: StreamsEnv, options: StreamsOptions) {
  const n = options.idle;
  console.log(`\n==> idle: ${n} \`logs -f\` open at once, through the host, then directly`);
  // KWOK follows each log with an inotify instance of its own: n of them, next to the machine's others.
  const restoreInotify = raiseSysctl('fs.inotify.max_user_instances', Math.max(1024, 2 * n));
  try {
    return await idleBoth(env, options);
  } finally {
    restoreInotify();
  }
}

async function idleBoth(env: StreamsEnv, options: StreamsOptions) {
  const n = options.idle;
  const paths: Record<Path, KubeConfig> = { host: env.host.kubeConfig, remote: env.remote.kubeConfig };
  await writeFile(env.kwok.logFile, criLine(new Date(), 'stdout', 'started'));
  const sessions = () => scrapeMetric(env.metricsUrl, 'spillway_kubelet_sessions', { kind: 'logs' });
  // One follow first, so that what is measured is the sessions, not the code paths' first use.
  await (
    await openFollowers(paths.host, `/api/v1/namespaces/${env.namespace}/pods/${POD}/log?follow=true`, 1)
  ).close();
  const { host: hostApi, remote: remoteApi } = env.apiServerPids;
  const host = await idleFollowers(
    env,
    paths.host,
    n,
    { spillway: env.spillway.pid, hostApiServer: hostApi, remoteApiServer: remoteApi },
    sessions,
  );
  console.log(
    `  through the host: opened in ${host.openSeconds.toFixed(1)} s; per session ${Object.entries(
      host.perSessionBytes,
    )
      .map(([k, v]) => `${k} ${kib(v)}`)
      .join(', ')}`,
  );
  const remote = await idleFollowers(env, paths.remote, n, { remoteApiServer: remoteApi });
  console.log(
    `  directly: opened in ${remote.openSeconds.toFixed(1)} s; per session remoteApiServer ${kib(remote.perSessionBytes.remoteApiServer ?? 0)}`,
  );
  const rows: Row[] = [
    [
      `memory per idle logs -f (${n} open)`,
      `Spillway ${kib(host.perSessionBytes.spillway ?? 0)}`,
      `remote API server ${kib(remote.perSessionBytes.remoteApiServer ?? 0)}`,
      '',
      '',
      'Spillway ≤ 50 KiB',
    ],
  ];
  return { result: { sessions: n, host, remote }, rows };
}

async function benchSlow(env: StreamsEnv, options: StreamsOptions) {
  const { kubectl } = await ensureBinaries();
  const command = ['seq', '1', String(options.seqLines)];
  const stallMs = options.stallSeconds * 1000;
  console.log(
    `\n==> slow reader: \`${command.join(' ')}\`, read only after ${options.stallSeconds} s (kubectl exec)`,
  );
  const { host: hostApi, remote: remoteApi } = env.apiServerPids;
  const run = async (kubeconfig: string, pids: Record<string, number>) => {
    const before = Object.fromEntries(
      await Promise.all(
        Object.entries(pids).map(async ([name, pid]) => [name, await restingRss(pid)] as const),
      ),
    );
    const samplers = Object.entries(pids).map(([name, pid]) => [name, sampleRss(pid, 100)] as const);
    const exec = await slowReaderExec(kubectl, kubeconfig, env.namespace, POD, command, stallMs);
    const growth = Object.fromEntries(
      samplers.map(([name, sampler]) => [name, sampler.stop() - (before[name] as number)]),
    );
    if (exec.exitCode !== 0) throw new Error(`kubectl exec exited ${exec.exitCode}: ${exec.stderr}`);
    return { ...exec, rssBefore: before, peakGrowthBytes: growth };
  };
  const host = await run(env.hostKubeconfig, {
    spillway: env.spillway.pid,
    hostApiServer: hostApi,
    remoteApiServer: remoteApi,
  });
  console.log(
    `  through the host: ${host.bytes} bytes in ${(host.ms / 1000).toFixed(1)} s; peak RSS growth ${Object.entries(
      host.peakGrowthBytes,
    )
      .map(([k, v]) => `${k} ${mib(v)}`)
      .join(', ')}`,
  );
  const remote = await run(env.remoteKubeconfig, { remoteApiServer: remoteApi });
  console.log(
    `  directly: ${remote.bytes} bytes in ${(remote.ms / 1000).toFixed(1)} s; peak RSS growth remoteApiServer ${mib(remote.peakGrowthBytes.remoteApiServer ?? 0)}`,
  );
  if (host.bytes !== remote.bytes)
    throw new Error(`the slow reader got ${host.bytes} bytes through the host, ${remote.bytes} directly`);
  const rows: Row[] = [
    [
      `slow reader, ${(host.bytes / 1e6).toFixed(0)} MB: peak RSS growth`,
      `Spillway ${mib(host.peakGrowthBytes.spillway ?? 0)}`,
      `remote API server ${mib(remote.peakGrowthBytes.remoteApiServer ?? 0)}`,
      '',
      '',
      'Spillway ≤ 64 MiB',
    ],
    ['slow reader: seconds to the last byte', host.ms / 1000, remote.ms / 1000, '', '', ''],
  ];
  return { result: { command, stallSeconds: options.stallSeconds, host, remote }, rows };
}

export async function benchStreams(options: StreamsOptions): Promise<void> {
  const loadBefore = loadavg();
  const env = await startStreamsEnv();
  try {
    const results: Record<string, unknown> = {};
    const rows: Row[] = [
      [
        '',
        'through the host (Spillway)',
        'remote directly',
        'floor: host API server → KWOK',
        'host vs remote',
        'goal',
      ],
    ];
    const failed: string[] = [];
    for (const section of options.sections) {
      // A section that fails is reported as such; the others' figures are still written.
      try {
        const { result, rows: sectionRows } =
          section === 'logs'
            ? await benchLogs(env, options)
            : section === 'exec'
              ? await benchExec(env, options)
              : section === 'idle'
                ? await benchIdle(env, options)
                : await benchSlow(env, options);
        results[section] = result;
        rows.push(...sectionRows);
      } catch (error) {
        console.log(`  ${section} failed: ${(error as Error).message}`);
        results[section] = { failed: (error as Error).message };
        failed.push(section);
      }
    }
    await writeResults(options, loadBefore, results);
    if (failed.length > 0) process.exitCode = 1;
    console.log(
      `\nload average (1, 5, 15 min): before ${loadBefore.map((l) => l.toFixed(1)).join(' ')}, after ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    console.log(`\n${formatTable(rows)}\n`);
  } finally {
    await env.close();
  }
}

async function writeResults(
  options: StreamsOptions,
  loadBefore: readonly number[],
  results: Record<string, unknown>,
): Promise<void> {
  const date = new Date().toISOString();
  const output = {
    benchmark: 'streams',
    date,
    machine: {
      cpus: cpus().length,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      loadAverage: { before: loadBefore, after: loadavg() },
    },
    // The code measured: the commit, and whether the tree had changes on top of it.
    code: {
      commit: execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim(),
      modified: execFileSync('git', ['status', '--porcelain', 'src'], { cwd: root, encoding: 'utf8' }) !== '',
    },
    options,
    ...results,
  };
  await mkdir(join(root, 'bench', 'results'), { recursive: true });
  const file = join(root, 'bench', 'results', `streams-${date.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(output, null, 2)}\n`);
  console.log(`written ${file}`);
}
