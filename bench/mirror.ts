// `npm run bench -- mirror --pods N`: how fast Spillway mirrors N pods already bound to its virtual
// node, and what it adds, next to a bare-API floor (a minimal client doing only the same two writes:
// remote create, host status patch) in the same run on the same clusters. The scale benchmark's
// burst scenario, alone.
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runBurst, runFloorBurst } from './burst.ts';
import { machine, prepare, teardown } from './lib/context.ts';
import { repoRoot, spillwayEntry } from './lib/spillway.ts';
import { formatTable } from './lib/stats.ts';
import { perPod } from './report.ts';

export interface MirrorOptions {
  readonly pods: number;
  readonly qps: number;
  readonly workers: number;
}

export async function benchMirror(options: MirrorOptions): Promise<void> {
  const context = await prepare({ ...options, profile: false, maxPods: options.pods });
  let result: Record<string, unknown>;
  try {
    const burst = await runBurst(context, { pods: options.pods, restart: false });
    const floor = await runFloorBurst(context, options.pods);
    const s = burst.spillway;
    const calls = perPod(s.calls, options.pods);
    const rows = [
      [
        '',
        'pods/s',
        'added p50 ms',
        'added p99 ms',
        'host start p50 ms',
        'host start p99 ms',
        'remote start p50 ms',
        'CPU s',
        'idle RSS MiB',
        'peak RSS MiB',
      ],
      [
        'spillway',
        s.podsPerSecond,
        s.addedMs.p50,
        s.addedMs.p99,
        s.hostStartupMs.p50,
        s.hostStartupMs.p99,
        s.remoteStartupMs.p50,
        s.cpuSeconds,
        s.idleRssMiB,
        s.peakRssMiB,
      ],
      [
        'floor',
        floor.podsPerSecond,
        floor.addedMs.p50,
        floor.addedMs.p99,
        floor.hostStartupMs.p50,
        floor.hostStartupMs.p99,
        floor.remoteStartupMs.p50,
        '-',
        '-',
        '-',
      ],
    ];
    console.log(`\n${formatTable(rows)}\n`);
    console.log(
      `per pod: ${calls.remoteCreates.toFixed(2)} remote creates, ${calls.hostStatusWrites.toFixed(2)} host status writes, ${calls.gets.toFixed(2)} GETs, ${calls.hostEvents.toFixed(2)} host events`,
    );
    result = {
      benchmark: 'mirror',
      date: new Date().toISOString(),
      machine: machine(),
      options: { ...options, nodeFlags: context.nodeFlags, entry: spillwayEntry },
      spillway: burst.spillway,
      problems: burst.problems,
      floor,
    };
  } finally {
    await teardown(context);
  }
  await mkdir(join(repoRoot, 'bench', 'results'), { recursive: true });
  const file = join(
    repoRoot,
    'bench',
    'results',
    `mirror-${options.pods}-${String(result.date).replace(/[:.]/g, '-')}.json`,
  );
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`written ${file}`);
}
