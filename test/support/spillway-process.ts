// Spillway as its own process (`spillway run`), for tests that measure it: its resident memory is
// then its own, not the test runner's. Resident memory is sampled from /proc often enough to see the
// peak of a transfer.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { openSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rssBytes } from '../../bench/lib/process-stats.ts';
import { NODE_FLAGS } from '../../src/kubelet/runtime-flags.ts';
import { type TestSpillwayOptions, writeConfig } from './spillway.ts';

const main = join(import.meta.dirname, '..', '..', 'src', 'main.ts');

export interface SpillwayProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  rss(): number;
  /** Samples resident memory until stopped; returns the highest value seen. */
  sampleRss(intervalMs?: number): { stop(): number };
  stop(): Promise<void>;
}

export async function startSpillwayProcess(options: TestSpillwayOptions): Promise<SpillwayProcess> {
  const config = await writeConfig(options);
  const logFile = join(await mkdtemp(join(tmpdir(), 'spillway-log-')), 'spillway.log');
  const out = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...NODE_FLAGS, main, 'run', '--config', config], {
    stdio: ['ignore', out, out],
  });
  const pid = child.pid as number;
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  return {
    child,
    pid,
    logFile,
    rss: () => rssBytes(pid),
    sampleRss(intervalMs = 100) {
      let peak = rssBytes(pid);
      const timer = setInterval(() => {
        if (!exited) peak = Math.max(peak, rssBytes(pid));
      }, intervalMs);
      return {
        stop: () => {
          clearInterval(timer);
          if (!exited) peak = Math.max(peak, rssBytes(pid));
          return peak;
        },
      };
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await once(child, 'exit');
      clearTimeout(timer);
    },
  };
}
