// `npm run clusters -- up | down | status | stop <name> | start <name>`: local clusters for people.
// Clusters live in .spillway/clusters/<name>/ and keep running after this command exits; their
// kubeconfigs are written to .spillway/clusters/<name>.kubeconfig.
/* biome-ignore-all lint/suspicious/noConsole: a command-line tool talks to its user on the console */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Command } from 'commander';
import { ensureBinaries } from './binaries.ts';
import { LocalCluster } from './cluster.ts';
import { kubectl } from './kubectl.ts';
import { realNodeSupport } from './realnode/machine.ts';
import { type ClusterRole, shapeFor } from './shapes.ts';

const repoRoot = join(import.meta.dirname, '..', '..');
const clustersDir = process.env.SPILLWAY_CLUSTERS_DIR ?? join(repoRoot, '.spillway', 'clusters');

export function kubeconfigPathOf(name: string, dir = clustersDir): string {
  return join(dir, `${name}.kubeconfig`);
}

function roleOf(name: string): ClusterRole {
  return name.startsWith('host') ? 'host' : 'remote';
}

async function existingNames(): Promise<string[]> {
  if (!existsSync(clustersDir)) return [];
  const entries = await readdir(clustersDir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && existsSync(join(clustersDir, e.name, 'state.json')))
    .map((e) => e.name);
}

async function load(name: string): Promise<LocalCluster> {
  if (!existsSync(join(clustersDir, name, 'state.json'))) {
    throw new Error(`no cluster named "${name}" in ${clustersDir}; run \`npm run clusters -- up\` first`);
  }
  return LocalCluster.load(join(clustersDir, name));
}

/** The cluster being started: Ctrl-C (or SIGTERM) stops it, so nothing is left half-started. */
let starting: LocalCluster | undefined;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\nclusters: ${signal}: stopping ${starting?.name ?? 'nothing'} and exiting`);
    void (starting?.stop() ?? Promise.resolve()).finally(() => process.exit(130));
  });
}

async function startAndPublish(cluster: LocalCluster): Promise<void> {
  const started = Date.now();
  starting = cluster;
  try {
    await cluster.start('detached');
  } finally {
    starting = undefined;
  }
  await copyFile(cluster.kubeconfigPath, kubeconfigPathOf(cluster.name));
  console.log(
    `${cluster.name}: ready in ${((Date.now() - started) / 1000).toFixed(1)}s at ${cluster.server}`,
  );
}

export interface UpOptions {
  /** Give the first remote cluster a real node (kubelet, containerd, runc) instead of simulated ones. */
  readonly realNode?: boolean;
}

/** Whether the cluster named runs a real node (false: KWOK only), after {@link up}. */
export type UpResult = Record<string, { readonly realNode: boolean }>;

/**
 * Brings the named clusters up (default: host and remote), reusing running or stopped ones. Where a
 * real node is asked for and the machine cannot run one, says why and gives simulated nodes instead.
 */
export async function up(
  names: readonly string[] = ['host', 'remote'],
  options: UpOptions = {},
): Promise<UpResult> {
  const result: UpResult = {};
  const realNodeCluster = options.realNode ? names.find((name) => roleOf(name) === 'remote') : undefined;
  const binaries = await ensureBinaries();
  await mkdir(join(clustersDir, '..', 'bin'), { recursive: true });
  const kubectlLink = join(clustersDir, '..', 'bin', 'kubectl');
  await rm(kubectlLink, { force: true });
  await symlink(binaries.kubectl, kubectlLink);
  const existing = await existingNames();
  for (const name of names) {
    if (existing.includes(name)) {
      const cluster = await LocalCluster.load(join(clustersDir, name), binaries);
      result[name] = { realNode: !!cluster.shape.realNode };
      if (name === realNodeCluster && !cluster.shape.realNode) {
        console.log(
          `${name}: exists with simulated nodes only; \`npm run clusters -- down\` first to recreate it with a real node`,
        );
      }
      if (cluster.isRunning()) {
        console.log(`${name}: already running at ${cluster.server}`);
        continue;
      }
      await startAndPublish(cluster);
    } else {
      let realNode = false;
      if (name === realNodeCluster) {
        const support = realNodeSupport(join(clustersDir, name));
        realNode = support.ok;
        if (!support.ok) {
          console.log(
            `${name}: NOTICE: no real node on this machine (${support.reason}); simulated (KWOK) nodes instead`,
          );
        }
      }
      result[name] = { realNode };
      const shape = shapeFor(name, roleOf(name), { realNode, answerEveryPod: true });
      await startAndPublish(await LocalCluster.create(join(clustersDir, name), shape, binaries));
      if (realNode)
        console.log(`${name}: its node 127.0.0.1 is a real kubelet (containerd, runc); one per machine`);
    }
  }
  console.log('\nkubeconfigs:');
  for (const name of names) console.log(`  ${relative(process.cwd(), kubeconfigPathOf(name))}`);
  console.log(
    `\ntry: ${relative(process.cwd(), kubectlLink)} --kubeconfig ${relative(process.cwd(), kubeconfigPathOf(names[0] ?? 'host'))} get nodes`,
  );
  return result;
}

async function down(): Promise<void> {
  for (const name of await existingNames()) {
    await (await load(name)).destroy();
    await rm(kubeconfigPathOf(name), { force: true });
    console.log(`${name}: removed`);
  }
}

async function status(): Promise<void> {
  const names = await existingNames();
  if (names.length === 0) console.log('no clusters; run `npm run clusters -- up`');
  const binaries = await ensureBinaries();
  for (const name of names) {
    const cluster = await LocalCluster.load(join(clustersDir, name), binaries);
    const components = cluster.components();
    const down = components.filter((c) => !c.running).map((c) => c.name);
    let nodes = '';
    if (down.length === 0) {
      const result = await kubectl(
        binaries.kubectl,
        cluster.kubeconfigPath,
        ['get', 'nodes', '--no-headers'],
        {
          allowFailure: true,
          timeoutMs: 10_000,
        },
      );
      nodes =
        result.exitCode === 0 ? `, ${result.stdout.trim().split('\n').filter(Boolean).length} nodes` : '';
    }
    const state =
      down.length === 0
        ? 'running'
        : down.length === components.length
          ? 'stopped'
          : `degraded (down: ${down.join(', ')})`;
    console.log(
      `${name} (${cluster.shape.role}): ${state} at ${cluster.server}${nodes}; kubeconfig ${relative(process.cwd(), kubeconfigPathOf(name))}`,
    );
  }
}

const program = new Command('clusters')
  .description('Local Kubernetes clusters (real control planes, kwok nodes) for trying and testing Spillway')
  .showHelpAfterError();
program
  .command('up')
  .argument(
    '[names...]',
    'clusters to bring up; names starting with "host" are host clusters, others remotes',
  )
  .option(
    '--real-node',
    'the first remote runs a real kubelet, containerd and runc as its node (root; one per machine)',
  )
  .description('bring clusters up (default: host and remote) and write their kubeconfigs')
  .action(async (names: string[], options: { realNode?: boolean }) => {
    await up(names.length > 0 ? names : undefined, { realNode: options.realNode ?? false });
  });
program.command('down').description('stop every cluster and delete its data').action(down);
program.command('status').description('show each cluster and whether its components run').action(status);
program
  .command('stop')
  .argument('<name>')
  .description("halt a cluster's control plane, keeping its data (a failure drill)")
  .action(async (name: string) => {
    await (await load(name)).stop();
    console.log(`${name}: stopped (data kept; \`npm run clusters -- start ${name}\` brings it back)`);
  });
program
  .command('start')
  .argument('<name>')
  .description('start a stopped cluster again with its data')
  .action(async (name: string) => startAndPublish(await load(name)));

if (import.meta.main) {
  program.parseAsync().catch((error: unknown) => {
    console.error(`clusters: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof Error && error.cause) console.error(`  cause: ${String(error.cause)}`);
    process.exit(1);
  });
}
