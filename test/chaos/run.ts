// `npm run chaos [-- --only <names> --scale <f>]`: the chaos suite on two real local clusters of its own
// (.spillway/chaos/), started fresh and removed at the end. Prints the result table, writes it with
// every figure to bench/results/chaos-<date>.json, and exits non-zero when a goal is missed.
/* biome-ignore-all lint/suspicious/noConsole: a command-line suite reports on the console */
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { ensureBinaries } from '../cluster/binaries.ts';
import { LocalCluster } from '../cluster/cluster.ts';
import { hostShape, remoteShape } from '../cluster/shapes.ts';
import { type ChaosCluster, prepare } from './environment.ts';
import { shortfalls, table } from './report.ts';
import { allScenarios, FULL, type Scale, type ScenarioResult } from './scenarios.ts';

const root = join(import.meta.dirname, '..', '..');
const dir = process.env.SPILLWAY_CHAOS_DIR ?? join(root, '.spillway', 'chaos');

function chaosCluster(cluster: LocalCluster): ChaosCluster {
  return {
    kubeconfig: cluster.kubeconfigPath,
    server: cluster.server,
    auditLog: cluster.shape.auditPodDeletions ? cluster.auditLogPath : undefined,
    restartApiserver: () => cluster.restart('kube-apiserver'),
    compactEtcd: () => cluster.compact(),
    restartDead: async () => {
      // The chaos clusters have no real node: every component is a control-plane process.
      const dead = cluster
        .components()
        .flatMap((c) => (!c.running && c.name !== 'containerd' && c.name !== 'kubelet' ? [c.name] : []));
      for (const name of dead) await cluster.restart(name);
      return dead.map((name) => `${cluster.name}/${name}`);
    },
  };
}

function scaled(factor: number): Scale {
  const at = (n: number) => Math.max(1, Math.round(n * factor));
  return {
    ...FULL,
    kills: at(FULL.kills),
    restarts: at(FULL.restarts),
    podsPerKill: FULL.podsPerKill,
    stormPods: at(FULL.stormPods),
  };
}

async function main(options: { only?: string; scale: string }): Promise<number> {
  const scale = scaled(Number(options.scale));
  const binaries = await ensureBinaries();
  const started = Date.now();
  console.log(`chaos: starting clusters in ${dir}`);
  const host = await LocalCluster.create(
    join(dir, 'clusters', 'chaos-host'),
    hostShape('chaos-host'),
    binaries,
  );
  const remote = await LocalCluster.create(
    join(dir, 'clusters', 'chaos-remote'),
    { ...remoteShape('chaos-remote'), auditPodDeletions: true },
    binaries,
  );
  const results: ScenarioResult[] = [];
  let aborted: string | undefined;
  try {
    await Promise.all([host.start('attached'), remote.start('attached')]);
    const env = await prepare(
      { host: chaosCluster(host), remote: chaosCluster(remote), kubectl: binaries.kubectl },
      { dir: join(dir, 'run'), suffix: Date.now().toString(36), statefulSets: 3, maxPods: 120 },
    );
    console.log(
      `chaos: clusters, Spillway and observer ready in ${Math.round((Date.now() - started) / 1000)} s`,
    );
    try {
      const only = options.only?.split(',');
      for (const scenario of allScenarios(scale)) {
        if (only && !only.some((o) => scenario.name.includes(o))) continue;
        if (!scenario.runnable(env)) continue;
        console.log(`chaos: ${scenario.name}`);
        let result: ScenarioResult;
        try {
          result = await scenario.run(env, (line) => console.log(line));
        } catch (error) {
          // What the earlier scenarios measured is written all the same; this run is a failure.
          aborted = `${scenario.name}: ${error instanceof Error ? error.message : String(error)}`;
          console.log(`chaos: aborted in ${aborted}`);
          break;
        }
        results.push(result);
        console.log(`${table([result])}\n`);
        if (Object.keys(result.notes).length) console.log(`  notes: ${JSON.stringify(result.notes)}\n`);
      }
    } finally {
      await env.stop();
    }
  } finally {
    // The clusters' own logs (and the remote's audit log) stay beside Spillway's, for the post-mortem.
    const keep = (cluster: LocalCluster) =>
      cp(cluster.logDir, join(dir, 'run', 'logs', cluster.name), { recursive: true }).catch(() => {});
    await Promise.all([host.stop(), remote.stop()]);
    await rm(join(dir, 'run', 'logs'), { recursive: true, force: true });
    await Promise.all([keep(host), keep(remote)]);
    await Promise.allSettled([host.destroy(), remote.destroy()]);
  }
  const misses = [...shortfalls(results), ...(aborted ? [`aborted in ${aborted}`] : [])];
  const summary = table(results);
  console.log(`\n${summary}\n`);
  console.log(misses.length ? `goals missed:\n  ${misses.join('\n  ')}` : 'every goal met');
  const date = new Date().toISOString();
  const file = join(root, 'bench', 'results', `chaos-${date.replace(/[:.]/g, '-')}.json`);
  await mkdir(join(root, 'bench', 'results'), { recursive: true });
  await writeFile(
    file,
    `${JSON.stringify(
      {
        benchmark: 'chaos',
        date,
        machine: {
          cpus: cpus().length,
          memoryGiB: Math.round(totalmem() / 2 ** 30),
          node: process.version,
          loadAverageAtEnd: loadavg(),
        },
        scale,
        minutes: Math.round((Date.now() - started) / 6000) / 10,
        table: summary,
        goalsMissed: misses,
        results,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`written ${file}`);
  return misses.length ? 1 : 0;
}

const program = new Command('chaos')
  .description('Faults on the real local clusters, and what Spillway does under them, counted')
  .option('--only <names>', 'comma-separated parts of scenario names (e.g. SIGKILL,partitioned)')
  .option('--scale <factor>', 'fraction of the full fault counts (SIGKILLs, restarts, storm pods)', '1')
  .showHelpAfterError()
  .action(async (options: { only?: string; scale: string }) => {
    process.exitCode = await main(options);
  });

await program.parseAsync();
process.exit(process.exitCode ?? 0);
