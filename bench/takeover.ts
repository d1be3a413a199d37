// `npm run bench -- takeover`: how long a dead replica's remotes stay without an owner. 3 replicas with
// the default `ha` timings share 4 remotes; each round SIGKILLs the replica owning most of them and
// measures, from the kill, when each of its remotes' Leases is held by a survivor and when its node
// advertises the new owner's kubelet port. Next to it, the floor of any Lease-based failover: the moment
// the victim's last renewal expires (its renew time + the lease duration), which no replica may beat.
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import type { V1Lease } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { kubeconfigPathOf, up } from '../test/cluster/cli.ts';
import { freePorts } from '../test/cluster/ports.ts';
import { condition, kube } from '../test/support/kube.ts';
import { type SpillwayProcess, spawnSpillway } from '../test/support/process.ts';
import { waitFor } from '../test/support/wait.ts';
import { formatTable, percentile } from './lib/stats.ts';

export interface TakeoverOptions {
  readonly rounds: number;
}

const root = join(import.meta.dirname, '..');

interface Replica {
  readonly identity: string;
  readonly kubeletPort: number;
  readonly process: SpillwayProcess;
}

interface Move {
  readonly round: number;
  readonly remote: string;
  /** From the kill, in seconds. */
  readonly floor: number;
  readonly leaseTaken: number;
  readonly nodeFollows: number;
}

export async function benchTakeover(options: TakeoverOptions): Promise<void> {
  await up(['host', 'remote']);
  const hostPath = kubeconfigPathOf('host');
  const remotePath = kubeconfigPathOf('remote');
  const host = kube(hostPath);
  const stamp = Date.now();
  const namespace = `bench-takeover-${stamp}`;
  const names = ['a', 'b', 'c', 'd'].map((x) => `bench-ha-${x}`);
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  const dir = await mkdtemp(join(tmpdir(), 'spillway-bench-takeover-'));
  const config = join(dir, 'spillway.yaml');
  await writeFile(
    config,
    stringify({
      hostClusterName: 'host',
      namespace,
      host: { kubeconfig: hostPath },
      kubelet: { address: '127.0.0.1' },
      discovery: { enabled: false },
      ha: { enabled: true },
      logLevel: 'info',
      remotes: names.map((name) => ({ name, kubeconfig: remotePath })),
    }),
  );
  const replicas: Replica[] = [];
  let started = 0;
  const startReplica = async () => {
    const [kubeletPort, metricsPort] = (await freePorts(2)) as [number, number];
    const identity = `bench-${started++}`;
    const args = ['--config', config, '--ha-identity', identity, '--kubelet-port', String(kubeletPort)];
    args.push('--metrics-port', String(metricsPort));
    replicas.push({ identity, kubeletPort, process: spawnSpillway(args) });
  };
  const alive = () =>
    replicas.filter((r) => r.process.child.exitCode === null && r.process.child.signalCode === null);
  const leases = async () => (await host.coordination.listNamespacedLease({ namespace })).items;
  const holderOf = (lease: V1Lease | undefined) => lease?.spec?.holderIdentity?.split('_')[0];
  const moves: Move[] = [];
  let notReady = 0;
  try {
    for (let i = 0; i < 3; i++) await startReplica();
    for (let round = 1; round <= options.rounds; round++) {
      const owners = await waitFor(
        'the 4 remotes spread over 3 live replicas',
        async () => {
          const current = new Map<string, string>();
          for (const lease of await leases()) {
            const remote = lease.metadata?.annotations?.['spillway.dev/remote'];
            const holder = holderOf(lease);
            if (remote && holder && alive().some((r) => r.identity === holder)) current.set(remote, holder);
          }
          const counts = new Set(current.values());
          return current.size === 4 && counts.size === 3 ? current : undefined;
        },
        { timeoutMs: 180_000 },
      );
      for (const name of names) {
        await waitFor(`spillway-${name} Ready`, async () => {
          const node = await host.core.readNode({ name: `spillway-${name}` }).catch(() => undefined);
          return condition(node, 'Ready')?.status === 'True' ? true : undefined;
        });
      }
      const byOwner = new Map<string, string[]>();
      for (const [remote, owner] of owners) byOwner.set(owner, [...(byOwner.get(owner) ?? []), remote]);
      const [victimId, moved] = [...byOwner].sort((a, b) => b[1].length - a[1].length)[0] as [
        string,
        string[],
      ];
      const victim = replicas.find((r) => r.identity === victimId) as Replica;
      const before = new Map(
        (await leases()).map((l) => [l.metadata?.annotations?.['spillway.dev/remote'], l]),
      );
      const killedAt = Date.now();
      victim.process.child.kill('SIGKILL');
      await victim.process.exited;
      const pending = new Map(moved.map((remote) => [remote, {} as { lease?: number; node?: number }]));
      while ([...pending.values()].some((p) => p.node === undefined)) {
        if (Date.now() - killedAt > 120_000) throw new Error('no takeover within 120 s');
        const current = new Map(
          (await leases()).map((l) => [l.metadata?.annotations?.['spillway.dev/remote'], l]),
        );
        for (const [remote, times] of pending) {
          const holder = holderOf(current.get(remote));
          const owner = alive().find((r) => r.identity === holder);
          if (owner && times.lease === undefined) times.lease = Date.now();
          if (owner && times.node === undefined) {
            const node = await host.core.readNode({ name: `spillway-${remote}` });
            if (condition(node, 'Ready')?.status !== 'True') notReady++;
            if (node.status?.daemonEndpoints?.kubeletEndpoint?.Port === owner.kubeletPort)
              times.node = Date.now();
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      for (const [remote, times] of pending) {
        const lease = before.get(remote);
        const expiry =
          Date.parse(String(lease?.spec?.renewTime)) + (lease?.spec?.leaseDurationSeconds ?? 10) * 1000;
        moves.push({
          round,
          remote,
          floor: (expiry - killedAt) / 1000,
          leaseTaken: ((times.lease ?? 0) - killedAt) / 1000,
          nodeFollows: ((times.node ?? 0) - killedAt) / 1000,
        });
      }
      console.log(`round ${round}: killed ${victimId}, moved ${moved.join(', ')}`);
      await startReplica();
    }
  } finally {
    await Promise.all(replicas.map((r) => r.process.stop('SIGTERM')));
    for (const name of names) await host.core.deleteNode({ name: `spillway-${name}` }).catch(() => {});
    await host.core.deleteNamespace({ name: namespace }).catch(() => {});
  }
  const column = (pick: (m: Move) => number) => moves.map(pick);
  const rows: (string | number)[][] = [['from the kill (s)', 'p50', 'max']];
  rows.push([
    'floor: last renewal expires',
    percentile(
      column((m) => m.floor),
      50,
    ),
    Math.max(...column((m) => m.floor)),
  ]);
  rows.push([
    'Lease held by a survivor',
    percentile(
      column((m) => m.leaseTaken),
      50,
    ),
    Math.max(...column((m) => m.leaseTaken)),
  ]);
  rows.push([
    'node advertises the new owner',
    percentile(
      column((m) => m.nodeFollows),
      50,
    ),
    Math.max(...column((m) => m.nodeFollows)),
  ]);
  console.log(
    `\n${formatTable(rows)}\n\n${moves.length} remotes moved in ${options.rounds} rounds; node seen NotReady ${notReady} times`,
  );
  const result = {
    benchmark: 'takeover',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
    ha: { leaseDurationSeconds: 10, renewDeadlineSeconds: 6, retryPeriodSeconds: 2 },
    rounds: options.rounds,
    notReadySeen: notReady,
    moves,
  };
  await mkdir(join(root, 'bench', 'results'), { recursive: true });
  const file = join(root, 'bench', 'results', `takeover-${result.date.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`results: ${file}`);
}
