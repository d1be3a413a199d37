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

async function startAndPublish(cluster: LocalCluster): Promise<void> {
  const started = Date.now();
  await cluster.start('detached');
  await copyFile(cluster.kubeconfigPath, kubeconfigPathOf(cluster.name));
  console.log(
    `${cluster.name}: ready in ${((Date.now() - started) / 1000).toFixed(1)}s at ${cluster.server}`,
  );
}

/** Brings the named clusters up (default: host and remote), reusing running or stopped ones. */
export async function up(names: readonly string[] = ['host', 'remote']): Promise<void> {
  const binaries = await ensureBinaries();
  await mkdir(join(clustersDir, '..', 'bin'), { recursive: true });
  const kubectlLink = join(clustersDir, '..', 'bin', 'kubectl');
  await rm(kubectlLink, { force: true });
  await symlink(binaries.kubectl, kubectlLink);
  const existing = await existingNames();
  for (const name of names) {
    if (existing.includes(name)) {
      const cluster = await LocalCluster.load(join(clustersDir, name), binaries);
      if (cluster.isRunning()) {
        console.log(`${name}: already running at ${cluster.server}`);
        continue;
      }
      await startAndPublish(cluster);
    } else {
      await startAndPublish(
        await LocalCluster.create(join(clustersDir, name), shapeFor(name, roleOf(name)), binaries),
      );
    }
  }
  console.log('\nkubeconfigs:');
  for (const name of names) console.log(`  ${relative(process.cwd(), kubeconfigPathOf(name))}`);
  console.log(
    `\ntry: ${relative(process.cwd(), kubectlLink)} --kubeconfig ${relative(process.cwd(), kubeconfigPathOf(names[0] ?? 'host'))} get nodes`,
  );
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
  .description('bring clusters up (default: host and remote) and write their kubeconfigs')
  .action((names: string[]) => up(names.length > 0 ? names : undefined));
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
