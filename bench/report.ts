// The scale benchmark's figures as Markdown: one table per scenario, Spillway next to its floor,
// and each goal of issue 11 with the figure it is judged by.

import type { Calls, ClusterCalls } from './lib/identity.ts';
import type { ScaleResult } from './scale.ts';

const f = (value: number | undefined, digits = 1): string =>
  value === undefined || !Number.isFinite(value)
    ? '–'
    : value >= 100
      ? value.toFixed(0)
      : value.toFixed(digits);
const ms = (value: number | undefined) =>
  value === undefined || !Number.isFinite(value)
    ? '–'
    : value >= 10_000
      ? `${(value / 1000).toFixed(1)} s`
      : `${value.toFixed(0)} ms`;
const table = (head: string[], rows: (string | number)[][]) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

const sum = (calls: Calls, keys: string[]) => keys.reduce((total, key) => total + (calls[key] ?? 0), 0);
const WRITES = ['podCreates', 'statusWrites', 'podDeletes', 'podWrites', 'otherWrites'];

export function perPod(calls: ClusterCalls, pods: number) {
  return {
    remoteCreates: (calls.remote.podCreates ?? 0) / pods,
    hostStatusWrites: (calls.host.statusWrites ?? 0) / pods,
    gets: ((calls.host.gets ?? 0) + (calls.remote.gets ?? 0)) / pods,
    hostEvents: (calls.host.events ?? 0) / pods,
    otherWrites:
      (sum(calls.host, ['podWrites', 'otherWrites', 'podDeletes']) +
        sum(calls.remote, ['podWrites', 'otherWrites', 'podDeletes'])) /
      pods,
  };
}

function goal(ok: boolean | undefined): string {
  return ok === undefined ? '–' : ok ? 'met' : '**missed**';
}

export function renderReport(result: ScaleResult): string {
  const out: string[] = [];
  const load = `load average ${result.machine.loadAverage.join(' / ')} at start, ${result.machineAfter.loadAverage.join(' / ')} at the end`;
  out.push(
    `Scale benchmark, ${result.date} — ${result.machine.cpus} CPUs, ${result.machine.memoryGiB} GiB, Node ${result.machine.node}, ${load}; Spillway: \`node ${result.options.nodeFlags.join(' ')} dist/main.js\`, qps ${result.options.qps}, ${result.options.workers} workers.`,
  );
  if (result.bursts.length > 0) {
    out.push(
      '',
      "**Burst** (pods bound to the virtual node at once; added = host Running − delegate Running, observed; observer delay = the benchmark's own event-loop delay, part of every observed latency):",
      '',
    );
    out.push(
      table(
        [
          'pods',
          '',
          'pods/s',
          'vs floor',
          'added p50',
          'added p99',
          'CPU s',
          'RSS idle',
          'RSS peak',
          'lease renew p99',
          'longest renew gap',
          'observer delay p99',
        ],
        result.bursts.flatMap(({ pods, spillway, floor }) => [
          [
            pods,
            'Spillway',
            f(spillway.spillway.podsPerSecond),
            `${f(spillway.spillway.podsPerSecond / (floor?.podsPerSecond ?? Number.NaN), 2)}×`,
            ms(spillway.spillway.addedMs.p50),
            ms(spillway.spillway.addedMs.p99),
            f(spillway.spillway.cpuSeconds),
            idleRss(spillway.spillway),
            `${f(spillway.spillway.peakRssMiB)} MiB`,
            ms(spillway.spillway.lease.latencyMs.p99),
            ms(spillway.spillway.lease.intervalMs.max),
            ms(spillway.spillway.lease.observerDelayMs?.p99),
          ],
          [
            pods,
            'floor',
            f(floor?.podsPerSecond),
            '',
            ms(floor?.addedMs.p50),
            ms(floor?.addedMs.p99),
            '',
            '',
            '',
            ms(floor?.lease.latencyMs.p99),
            ms(floor?.lease.intervalMs.max),
            ms(floor?.lease.observerDelayMs?.p99),
          ],
        ]),
      ),
    );
    out.push('', "**Calls per pod in the burst** (counted by the API servers, by Spillway's identity):", '');
    out.push(
      table(
        [
          'pods',
          'remote creates',
          'host status writes',
          'GETs',
          'host events',
          'other writes',
          'lists',
          'watches',
        ],
        result.bursts.map(({ pods, spillway }) => {
          const p = perPod(spillway.spillway.calls, pods);
          const c = spillway.spillway.calls;
          return [
            pods,
            f(p.remoteCreates, 2),
            f(p.hostStatusWrites, 2),
            f(p.gets, 2),
            f(p.hostEvents, 2),
            f(p.otherWrites, 2),
            (c.host.lists ?? 0) + (c.remote.lists ?? 0),
            (c.host.watches ?? 0) + (c.remote.watches ?? 0),
          ];
        }),
      ),
    );
  }
  const held = result.bursts.find((b) => b.spillway.restart);
  if (held?.spillway.restart && held.spillway.hold) {
    const r = held.spillway.restart;
    const h = held.spillway.hold;
    out.push(
      '',
      `**Holding ${held.pods} pods** for ${h.seconds} s: RSS ${f(h.rssMiB)} MiB, CPU ${f(h.cpuSeconds, 2)} s, calls ${sum(h.calls.host, Object.keys(h.calls.host)) + sum(h.calls.remote, Object.keys(h.calls.remote))} (GETs ${(h.calls.host.gets ?? 0) + (h.calls.remote.gets ?? 0)}).`,
    );
    out.push('', `**Restart** (SIGKILL holding ${held.pods} Running pods, started again):`, '');
    const writes = sum(r.calls.host, WRITES) + sum(r.calls.remote, WRITES);
    out.push(
      table(
        [
          'every pod verified',
          'floor (list both sides)',
          'creates',
          'deletes',
          'status writes',
          'all writes',
          'GETs',
          'lists',
          'CPU s',
          'RSS peak',
        ],
        [
          [
            `${f(r.verifiedSeconds)} s`,
            `${f(r.floorListSeconds)} s`,
            r.calls.remote.podCreates ?? 0,
            (r.calls.remote.podDeletes ?? 0) + (r.calls.host.podDeletes ?? 0),
            r.calls.host.statusWrites ?? 0,
            writes,
            (r.calls.host.gets ?? 0) + (r.calls.remote.gets ?? 0),
            (r.calls.host.lists ?? 0) + (r.calls.remote.lists ?? 0),
            f(r.cpuSeconds),
            `${f(r.peakRssMiB)} MiB`,
          ],
        ],
      ),
    );
  }
  if (result.steady.length > 0) {
    out.push('', '**Steady arrivals** (Poisson; added = host Running − delegate Running, observed):', '');
    out.push(
      table(
        [
          'pods/s',
          'pods',
          'added p50',
          'added p99',
          'floor added p50',
          'floor added p99',
          'GETs per pod',
          'host status writes per pod',
          'RSS',
          'CPU s',
        ],
        result.steady.map((s) => {
          const p = perPod(s.spillway.calls, s.spillway.pods);
          return [
            s.perSecond,
            s.spillway.pods,
            ms(s.spillway.addedMs.p50),
            ms(s.spillway.addedMs.p99),
            ms(s.floor?.addedMs.p50),
            ms(s.floor?.addedMs.p99),
            f(p.gets, 2),
            f(p.hostStatusWrites, 2),
            `${f(s.spillway.rssMiB)} MiB`,
            f(s.spillway.cpuSeconds),
          ];
        }),
      ),
    );
  }
  const m = result.multi;
  if (m) {
    out.push(
      '',
      `**${m.nodes} virtual nodes × ${m.podsPerNode} pods** in one process (one remote cluster configured ${m.nodes} times):`,
      '',
    );
    const leaseP99 = Math.max(...m.spillway.lease.map((l) => l.latencyMs.p99));
    const observerP99 = Math.max(...m.spillway.lease.map((l) => l.observerDelayMs?.p99 ?? Number.NaN));
    out.push(
      table(
        [
          'pods/s',
          'floor pods/s',
          'vs floor',
          'per node pods/s',
          'added p50',
          'added p99',
          'CPU s',
          'RSS idle',
          'RSS peak',
          'lease renew p99 (worst node)',
          'observer delay p99',
        ],
        [
          [
            f(m.spillway.podsPerSecond),
            f(m.floor?.podsPerSecond),
            `${f(m.spillway.podsPerSecond / (m.floor?.podsPerSecond ?? Number.NaN), 2)}×`,
            m.spillway.perNodePodsPerSecond.map((x) => f(x)).join(', '),
            ms(m.spillway.addedMs.p50),
            ms(m.spillway.addedMs.p99),
            f(m.spillway.cpuSeconds),
            idleRss(m.spillway),
            `${f(m.spillway.peakRssMiB)} MiB`,
            ms(leaseP99),
            ms(observerP99),
          ],
        ],
      ),
    );
  }
  out.push('', '**Goals** (issue 11):', '', renderGoals(result));
  return out.join('\n');
}

function renderGoals(result: ScaleResult): string {
  const big = result.bursts.find((b) => b.pods >= 10_000);
  const any = big ?? result.bursts.at(-1);
  const idle = Math.min(
    ...result.bursts.map((b) => b.spillway.spillway.idleRssMiB),
    Number.POSITIVE_INFINITY,
  );
  const restart = big?.spillway.restart;
  const steady10 = result.steady.find((s) => s.perSecond === 10);
  const p = any ? perPod(any.spillway.spillway.calls, any.pods) : undefined;
  const rows: [string, string, boolean | undefined][] = [
    [
      'burst ≥ 0.9× floor at 10k',
      big ? `${f(big.spillway.spillway.podsPerSecond / (big.floor?.podsPerSecond ?? Number.NaN), 2)}×` : '–',
      big?.floor ? big.spillway.spillway.podsPerSecond >= 0.9 * big.floor.podsPerSecond : undefined,
    ],
    [
      'peak RSS ≤ 200 MiB, 10k pods on one node',
      big ? `${f(big.spillway.spillway.peakRssMiB)} MiB` : '–',
      big ? big.spillway.spillway.peakRssMiB <= 200 : undefined,
    ],
    [
      'peak RSS ≤ 300 MiB, 5 × 2k',
      result.multi ? `${f(result.multi.spillway.peakRssMiB)} MiB` : '–',
      result.multi ? result.multi.spillway.peakRssMiB <= 300 : undefined,
    ],
    [
      'idle RSS ≤ 80 MiB',
      Number.isFinite(idle) ? `${f(idle)} MiB` : '–',
      Number.isFinite(idle) ? idle <= 80 : undefined,
    ],
    [
      'steady added p50 ≤ 20 ms, p99 ≤ 100 ms at 10/s',
      steady10 ? `${ms(steady10.spillway.addedMs.p50)} / ${ms(steady10.spillway.addedMs.p99)}` : '–',
      steady10 ? steady10.spillway.addedMs.p50 <= 20 && steady10.spillway.addedMs.p99 <= 100 : undefined,
    ],
    [
      'restart, 10k verified ≤ 30 s, 0 creates/deletes/status writes',
      restart
        ? `${f(restart.verifiedSeconds)} s, ${restart.calls.remote.podCreates ?? 0} / ${(restart.calls.remote.podDeletes ?? 0) + (restart.calls.host.podDeletes ?? 0)} / ${restart.calls.host.statusWrites ?? 0}`
        : '–',
      restart
        ? restart.verifiedSeconds <= 30 &&
          (restart.calls.remote.podCreates ?? 0) +
            (restart.calls.remote.podDeletes ?? 0) +
            (restart.calls.host.podDeletes ?? 0) +
            (restart.calls.host.statusWrites ?? 0) ===
            0
        : undefined,
    ],
    [
      '1 remote create and ≤ 2 host status writes per pod (burst)',
      p ? `${f(p.remoteCreates, 2)} / ${f(p.hostStatusWrites, 2)}` : '–',
      p ? Math.abs(p.remoteCreates - 1) < 0.005 && p.hostStatusWrites <= 2 : undefined,
    ],
    [
      // A GET per pod would show as about 1 per pod; the few a run makes are per namespace or periodic.
      '0 GETs per pod in steady state (met: under 1 per 100 pods)',
      steady10 ? steadyGets(steady10) : '–',
      steady10 ? perPod(steady10.spillway.calls, steady10.spillway.pods).gets < 0.01 : undefined,
    ],
    [
      'lease renew p99 ≤ 1 s during the burst',
      any ? ms(any.spillway.spillway.lease.latencyMs.p99) : '–',
      any ? any.spillway.spillway.lease.latencyMs.p99 <= 1000 : undefined,
    ],
  ];
  return table(
    ['goal', 'measured', ''],
    rows.map(([g, v, ok]) => [g, v, goal(ok)]),
  );
}

function steadyGets(steady: { spillway: { calls: ClusterCalls; pods: number } }): string {
  const { calls, pods } = steady.spillway;
  const gets = (calls.host.gets ?? 0) + (calls.remote.gets ?? 0);
  return `${gets} in all for ${pods} pods (${f(gets / pods, 3)} per pod)`;
}

/** Idle RSS, with its file-backed share (the node binary's mapped code) where it was measured. */
function idleRss(figures: { idleRssMiB: number; idleFileRssMiB?: number }): string {
  const file = figures.idleFileRssMiB;
  return `${f(figures.idleRssMiB)} MiB${file === undefined ? '' : ` (${f(file)} file-backed)`}`;
}
