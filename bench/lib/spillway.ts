// Spillway as the benchmarks run it: the compiled CLI (`node dist/main.js run`, what the container
// image runs), as a child process with its own configuration and log, watched from outside: its RSS
// and CPU from /proc, milestones from its log lines.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { NODE_FLAGS } from '../../src/kubelet/runtime-flags.ts';
import { type BenchCluster, sleep } from './api.ts';
import { BENCH_NAMESPACE } from './identity.ts';
import { cpuSeconds, fileRssBytes, rssBytes } from './process-stats.ts';

export const repoRoot = join(import.meta.dirname, '..', '..');
export const benchDir = join(repoRoot, '.spillway', 'bench');
const pidFile = join(benchDir, 'spillway.pid');

/** The node flags Spillway is started with everywhere (the image, the bin, npm run spillway). */
export function imageNodeFlags(): string[] {
  return [...NODE_FLAGS];
}

/**
 * The Spillway the benchmarks run: this checkout's dist/main.js, or SPILLWAY_BENCH_ENTRY (another
 * build's main.js, to measure it with the same benchmark, e.g. before and after a change).
 */
export const spillwayEntry = process.env.SPILLWAY_BENCH_ENTRY ?? join(repoRoot, 'dist', 'main.js');

let built = false;

/** Compiles src/ to dist/ once per benchmark run (tsc takes a second or two). */
export function buildOnce(): void {
  if (built || process.env.SPILLWAY_BENCH_ENTRY) return;
  execFileSync(
    process.execPath,
    [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: repoRoot,
      stdio: 'inherit',
    },
  );
  built = true;
}

export interface RemoteEntry {
  readonly name: string;
  readonly nodeName: string;
}

export interface SpillwayOptions {
  readonly label: string;
  readonly hostKubeconfig: string;
  readonly remoteKubeconfig: string;
  readonly remotes: readonly RemoteEntry[];
  readonly kubeletPort: number;
  readonly qps: number;
  readonly workers: number;
  readonly nodeFlags: readonly string[];
  /** Writes a CPU profile on exit and a heap snapshot on SIGUSR2 here. */
  readonly profileDir?: string;
}

export interface LogLine {
  readonly time: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** Kills a Spillway an aborted earlier benchmark left running (by the pid it recorded). */
export function killLeftoverSpillway(): void {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes(spillwayEntry)) process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

export class SpillwayProcess {
  readonly options: SpillwayOptions;
  readonly configFile: string;
  readonly logFile: string;
  private child: ChildProcess | undefined;
  private exit: Promise<void> = Promise.resolve();
  private logOffset = 0;
  private logRest = '';
  private readonly lines: LogLine[] = [];
  startedAt = 0;

  private constructor(options: SpillwayOptions, configFile: string, logFile: string) {
    this.options = options;
    this.configFile = configFile;
    this.logFile = logFile;
  }

  static async create(options: SpillwayOptions): Promise<SpillwayProcess> {
    await mkdir(benchDir, { recursive: true });
    const configFile = join(benchDir, `${options.label}.yaml`);
    await writeFile(
      configFile,
      stringify({
        hostClusterName: 'bench',
        namespace: BENCH_NAMESPACE,
        host: { kubeconfig: options.hostKubeconfig, qps: options.qps, burst: options.qps },
        kubelet: { address: '127.0.0.1', port: options.kubeletPort },
        remotes: options.remotes.map((r) => ({
          name: r.name,
          kubeconfig: options.remoteKubeconfig,
          nodeName: r.nodeName,
        })),
        remoteQps: options.qps,
        remoteBurst: options.qps,
        pods: { workers: options.workers },
        discovery: { enabled: false },
        logLevel: 'info',
      }),
    );
    return new SpillwayProcess(options, configFile, join(benchDir, `${options.label}.log`));
  }

  get pid(): number {
    const pid = this.child?.pid;
    if (pid === undefined) throw new Error('Spillway is not running');
    return pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts it (again: a restart appends to the same log). */
  start(): void {
    if (this.running) throw new Error('Spillway is already running');
    const profile = this.options.profileDir
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${this.options.profileDir}`,
          '--heapsnapshot-signal=SIGUSR2',
          `--diagnostic-dir=${this.options.profileDir}`,
        ]
      : [];
    const out = openSync(this.logFile, 'a');
    this.startedAt = Date.now();
    this.child = spawn(
      process.execPath,
      [...this.options.nodeFlags, ...profile, spillwayEntry, 'run', '--config', this.configFile],
      { stdio: ['ignore', out, out], cwd: this.options.profileDir ?? benchDir },
    );
    closeSync(out);
    writeFileSync(pidFile, String(this.child.pid));
    const child = this.child;
    this.exit = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Waits until its virtual nodes are Ready in the host (each has a Ready=True condition). */
  async waitForNodesReady(host: BenchCluster, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const { nodeName } of this.options.remotes) {
      for (;;) {
        if (!this.running)
          throw new Error(`Spillway exited before node ${nodeName} was Ready; see ${this.logFile}`);
        const node = await host.client
          .get<{ status?: { conditions?: { type: string; status: string }[] } }>(`/api/v1/nodes/${nodeName}`)
          .catch(() => undefined);
        if (node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) break;
        if (Date.now() > deadline) throw new Error(`virtual node ${nodeName} did not become Ready`);
        await sleep(500);
      }
    }
  }

  /** Log lines written since the last call (JSON lines of pino). */
  private readLog(): void {
    if (!existsSync(this.logFile)) return;
    const size = statSync(this.logFile).size;
    if (size <= this.logOffset) return;
    const fd = openSync(this.logFile, 'r');
    const buffer = Buffer.alloc(size - this.logOffset);
    readSync(fd, buffer, 0, buffer.length, this.logOffset);
    closeSync(fd);
    this.logOffset = size;
    const text = this.logRest + buffer.toString('utf8');
    const parts = text.split('\n');
    this.logRest = parts.pop() ?? '';
    for (const part of parts) {
      try {
        const line = JSON.parse(part) as { time: string | number; msg: string };
        this.lines.push({ ...line, time: typeof line.time === 'number' ? line.time : Date.parse(line.time) });
      } catch {
        // not a log line (a crash trace): kept in the file
      }
    }
  }

  /** The first log line since `since` whose message matches, waiting for it. */
  async waitForLog(message: RegExp, since: number, timeoutMs: number): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.readLog();
      const found = this.lines.find((l) => l.time >= since && message.test(l.msg));
      if (found) return found;
      if (!this.running)
        throw new Error(`Spillway exited while waiting for "${message.source}"; see ${this.logFile}`);
      if (Date.now() > deadline)
        throw new Error(`no "${message.source}" in Spillway's log after ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  /** Warnings and errors it logged since `since`, counted by message. */
  problems(since: number): Record<string, number> {
    this.readLog();
    const counts: Record<string, number> = {};
    for (const line of this.lines) {
      if (line.time < since || (line.level as number) < 40) continue;
      counts[line.msg] = (counts[line.msg] ?? 0) + 1;
    }
    return counts;
  }

  rssMiB(): number {
    return rssBytes(this.pid) / 2 ** 20;
  }

  /** The file-backed part of its RSS (the node binary's mapped code, mostly). */
  fileRssMiB(): number {
    return fileRssBytes(this.pid) / 2 ** 20;
  }

  cpuSeconds(): number {
    return cpuSeconds(this.pid);
  }

  /** Asks for a heap snapshot (with profiling on); resolves once it has been written. */
  async heapSnapshot(): Promise<void> {
    const dir = this.options.profileDir;
    if (!dir || !this.running) return;
    const snapshots = () => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot'));
    const before = new Set(snapshots());
    process.kill(this.pid, 'SIGUSR2');
    const deadline = Date.now() + 600_000;
    let lastSize = -1;
    while (Date.now() < deadline) {
      await sleep(2000);
      const file = snapshots().find((f) => !before.has(f));
      if (!file) continue;
      const size = statSync(join(dir, file)).size;
      if (size === lastSize && size > 0) return;
      lastSize = size;
    }
  }

  /** SIGKILL: no shutdown at all, as a crash or an OOM kill. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGKILL');
    await this.exit;
  }

  /** SIGTERM and wait for it to exit (only once nothing it must finalise remains: see cleanup.ts). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child?.kill('SIGTERM');
    await this.exit;
  }
}

/** Samples a process's RSS while a phase runs: its peak and median. */
export class RssSampler {
  private readonly samples: number[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(spillway: SpillwayProcess, intervalMs = 250) {
    this.timer = setInterval(() => {
      if (spillway.running) this.samples.push(spillway.rssMiB());
    }, intervalMs);
  }

  stop(): { peakMiB: number; medianMiB: number } {
    clearInterval(this.timer);
    const sorted = [...this.samples].sort((a, b) => a - b);
    return {
      peakMiB: sorted.at(-1) ?? Number.NaN,
      medianMiB: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN,
    };
  }
}
