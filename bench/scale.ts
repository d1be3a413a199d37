// `npm run bench` (or `npm run bench -- scale`): the scale benchmark. Bursts of 1k and 10k pods, a
// restart holding 10k, steady arrivals at 10/s and 50/s, five virtual nodes × 2k pods; each next to
// its floor measured in the same run. Results as JSON in bench/results/ and a Markdown table for the
// README.
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BurstResult, type FloorResult, runBurst, runFloorBurst } from './burst.ts';
import { type BenchContext, machine, prepare, teardown } from './lib/context.ts';
import { summarizeCpuProfile } from './lib/cpu-summary.ts';
import { summarizeHeapSnapshot } from './lib/heap-summary.ts';
import { benchDir, repoRoot, spillwayEntry } from './lib/spillway.ts';
import { type MultiResult, runMulti } from './multi.ts';
import { renderReport } from './report.ts';
import { runSteady, type SteadyResult } from './steady.ts';

export const SCENARIOS = ['burst', 'restart', 'steady', 'multi'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface ScaleOptions {
  readonly scenarios: readonly Scenario[];
  readonly burstPods: readonly number[];
  readonly steadyRates: readonly number[];
  readonly steadySeconds: number;
  readonly multiNodes: number;
  readonly multiPodsPerNode: number;
  readonly qps: number;
  readonly workers: number;
  readonly profile: boolean;
  /** false only while developing: figures without their floor are not results. */
  readonly floors: boolean;
  /** Node flags for Spillway instead of the container image's. */
  readonly nodeFlags?: readonly string[];
}

export interface ScaleResult {
  readonly benchmark: 'scale';
  readonly date: string;
  readonly machine: ReturnType<typeof machine>;
  readonly options: ScaleOptions & { nodeFlags: readonly string[]; entry: string };
  readonly bursts: { pods: number; spillway: BurstResult; floor?: FloorResult }[];
  readonly steady: SteadyResult[];
  readonly multi?: MultiResult & { floor?: FloorResult };
  readonly profiles: Record<string, unknown>;
  readonly machineAfter: ReturnType<typeof machine>;
}

/** Summaries of the CPU profiles and heap snapshots Spillway wrote (with --profile). */
async function profiles(): Promise<Record<string, unknown>> {
  const dir = join(benchDir, 'profiles');
  const out: Record<string, unknown> = {};
  for (const label of await readdir(dir).catch(() => [] as string[])) {
    for (const file of await readdir(join(dir, label))) {
      const path = join(dir, label, file);
      if (file.endsWith('.cpuprofile')) out[`${label}/${file}`] = await summarizeCpuProfile(path, 15);
      if (file.endsWith('.heapsnapshot')) out[`${label}/${file}`] = await summarizeHeapSnapshot(path, 15);
    }
  }
  return out;
}

export async function benchScale(options: ScaleOptions): Promise<ScaleResult> {
  const has = (scenario: Scenario) => options.scenarios.includes(scenario);
  const biggest = Math.max(...options.burstPods);
  const maxPods = Math.max(
    has('burst') || has('restart') ? biggest : 0,
    has('multi') ? options.multiNodes * options.multiPodsPerNode : 0,
    has('steady') ? Math.max(...options.steadyRates) * options.steadySeconds * 1.3 : 0,
  );
  const context: BenchContext = await prepare({
    nodeFlags: options.nodeFlags,
    qps: options.qps,
    workers: options.workers,
    profile: options.profile,
    maxPods,
  });
  const before = machine();
  const bursts: ScaleResult['bursts'] = [];
  const floors = new Map<number, FloorResult>();
  let steady: SteadyResult[] = [];
  let multi: ScaleResult['multi'];
  try {
    if (has('burst') || has('restart')) {
      const sizes = has('burst') ? options.burstPods : [biggest];
      for (const pods of sizes) {
        const spillway = await runBurst(context, { pods, restart: has('restart') && pods === biggest });
        const floor = options.floors ? await runFloorBurst(context, pods) : undefined;
        if (floor) floors.set(pods, floor);
        bursts.push({ pods, spillway, floor });
      }
    }
    if (has('steady'))
      steady = await runSteady(context, options.steadyRates, options.steadySeconds, options.floors);
    if (has('multi')) {
      const result = await runMulti(context, options.multiNodes, options.multiPodsPerNode);
      const total = options.multiNodes * options.multiPodsPerNode;
      multi = {
        ...result,
        floor: floors.get(total) ?? (options.floors ? await runFloorBurst(context, total) : undefined),
      };
    }
  } finally {
    await teardown(context);
  }
  const result: ScaleResult = {
    benchmark: 'scale',
    date: new Date().toISOString(),
    machine: before,
    options: { ...options, nodeFlags: context.nodeFlags, entry: spillwayEntry },
    bursts,
    steady,
    multi,
    profiles: options.profile ? await profiles() : {},
    machineAfter: machine(),
  };
  const report = renderReport(result);
  console.log(`\n${report}`);
  const resultsDir = join(repoRoot, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  const stem = join(resultsDir, `scale-${result.date.replace(/[:.]/g, '-')}`);
  await writeFile(`${stem}.json`, `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(`${stem}.md`, `${report}\n`);
  console.log(`written ${stem}.json and .md`);
  return result;
}
