// The faults, each on the real clusters, with churn around them, and what each run counts. Two times
// are measured from the moment a fault is over and the churn has stopped: convergence, until both
// clusters agree (observer: Spillway has caught up), and settling, until moreover every controller
// has what it asked for (which also waits on the clusters' own controllers and schedulers recovering).
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChaosEnvironment } from './environment.ts';

export interface ScenarioResult {
  readonly name: string;
  readonly faults: number;
  readonly pods: number;
  readonly duplicates: number;
  readonly orphans: number;
  readonly lost: number;
  readonly failedBySpillway: number;
  readonly regressions: number;
  readonly atMostOne: number;
  /** Seconds until both clusters agree, one per fault; null when a fault did not converge within the deadline. */
  readonly convergence: (number | null)[];
  /** Seconds until, moreover, every controller has the pods it wants, one per fault (null: not by the deadline). */
  readonly settled: (number | null)[];
  readonly notReadyFlaps: number;
  readonly leaseMaxAgeSeconds: number;
  readonly seconds: number;
  /** Scenario-specific figures (429s received, 410s relisted…) and what went wrong, if anything. */
  readonly notes: Record<string, unknown>;
}

export interface Scenario {
  readonly name: string;
  /** Whether the clusters of this run can do what the scenario needs (restart an API server…). */
  readonly runnable: (env: ChaosEnvironment) => boolean;
  readonly run: (env: ChaosEnvironment, log: (line: string) => void) => Promise<ScenarioResult>;
}

export interface Scale {
  /** SIGKILL rounds, and new pods per round. */
  readonly kills: number;
  readonly podsPerKill: number;
  readonly restarts: number;
  readonly podsPerRestart: number;
  readonly stormPods: number;
  readonly stormSeconds: number;
  readonly convergenceDeadlineMs: number;
}

export const FULL: Scale = {
  kills: 20,
  podsPerKill: 50,
  restarts: 5,
  podsPerRestart: 20,
  stormPods: 100,
  stormSeconds: 60,
  convergenceDeadlineMs: 180_000,
};

interface Run {
  readonly env: ChaosEnvironment;
  readonly log: (line: string) => void;
  readonly started: number;
  readonly convergence: (number | null)[];
  readonly settled: (number | null)[];
  readonly notes: Record<string, unknown>;
  faults: number;
  lastChange: number;
  problems: string[];
  /** What still disagreed when a fault missed its deadline. */
  orphans: number;
  readonly lost: string[];
}

function begin(env: ChaosEnvironment, log: (line: string) => void): Run {
  env.observer.reset();
  return {
    env,
    log,
    started: Date.now(),
    convergence: [],
    settled: [],
    notes: {},
    faults: 0,
    lastChange: Date.now(),
    problems: [],
    orphans: 0,
    lost: [],
  };
}

/** Runs churn steps until `pods` more host pods have been bound to the virtual node (or `until` says stop). */
async function churn(run: Run, pods: number, until?: () => boolean): Promise<void> {
  const { observer, workload } = run.env;
  const target = observer.counts().mirrored + pods;
  const deadline = Date.now() + 10 * 60_000;
  let checked = Date.now();
  while (observer.counts().mirrored < target && !until?.() && Date.now() < deadline) {
    if (Date.now() - checked > 5_000) {
      checked = Date.now();
      await restartDeadComponents(run);
    }
    try {
      await workload.step(observer.livePods());
      run.lastChange = Date.now();
    } catch {
      // The host API server may be restarting: the churn waits for it like any client.
    }
    await sleep(250);
  }
}

/** Agreement must hold this long (over several checks) to count: controllers' statuses lag their pods. */
const STABLE_MS = 2_000;

/**
 * Waits until both clusters agree and every controller is satisfied, and stays so for STABLE_MS;
 * records the time from the fault (or the last churn) to the start of the clusters' agreement
 * (convergence) and of that whole state (settled). A fault that does not converge by the deadline
 * leaves what still disagrees: its lost pods and orphans.
 */
async function converge(run: Run, faultEnd: number, deadlineMs: number, record = true): Promise<void> {
  const from = Math.max(faultEnd, run.lastChange);
  const deadline = from + deadlineMs;
  const { observer, workload } = run.env;
  const secondsSince = (at: number) => Math.round((at - from) / 100) / 10;
  let checked = 0;
  let reported = Date.now();
  let agreedSince: number | undefined;
  let settledSince: number | undefined;
  let converged: number | undefined;
  for (;;) {
    if (Date.now() - checked > 5_000) {
      checked = Date.now();
      await restartDeadComponents(run);
    }
    const problems = observer.disagreements();
    const waiting = problems.length === 0 ? await workload.unsettled().catch((e) => [String(e)]) : [];
    agreedSince = problems.length === 0 ? (agreedSince ?? Date.now()) : undefined;
    settledSince = problems.length === 0 && waiting.length === 0 ? (settledSince ?? Date.now()) : undefined;
    if (converged === undefined && agreedSince !== undefined && Date.now() - agreedSince >= STABLE_MS) {
      converged = secondsSince(agreedSince);
    }
    if (settledSince !== undefined && Date.now() - settledSince >= STABLE_MS) {
      const settled = secondsSince(settledSince);
      const agreed = converged ?? settled;
      if (record) {
        run.convergence.push(agreed);
        run.settled.push(settled);
      }
      run.log(
        `  ${record ? 'converged' : 'settled before the fault'} in ${agreed} s (workloads settled in ${settled} s)`,
      );
      return;
    }
    const why = [...problems, ...waiting];
    if (Date.now() > deadline) {
      if (record) {
        run.convergence.push(converged ?? null);
        run.settled.push(null);
        run.orphans += problems.filter((p) => p.endsWith('orphan delegate')).length;
        run.lost.push(...problems.filter((p) => !p.endsWith('orphan delegate')));
      }
      run.problems.push(...why.slice(0, 20).map((w) => (record ? w : `before the fault: ${w}`)));
      run.log(`  NOT settled after ${deadlineMs / 1000} s: ${why.slice(0, 5).join('; ')}`);
      return;
    }
    if (Date.now() - reported > 10_000) {
      reported = Date.now();
      run.log(`    still waiting (${why.length}): ${why.slice(0, 3).join('; ')}`);
    }
    await sleep(250);
  }
}

/** A cluster component that died on its own is started again, and the run says so. */
async function restartDeadComponents(run: Run): Promise<void> {
  for (const cluster of [run.env.clusters.host, run.env.clusters.remote]) {
    const restarted = (await cluster.restartDead?.().catch(() => [])) ?? [];
    if (restarted.length === 0) continue;
    run.log(`  restarted ${restarted.join(', ')}, which had died`);
    const notes = (run.notes.componentsRestarted ?? []) as string[];
    run.notes.componentsRestarted = [...notes, ...restarted];
  }
}

function finish(run: Run, name: string): ScenarioResult {
  const { observer } = run.env;
  const counts = observer.counts();
  const details = observer.details();
  const lost = run.lost;
  const failed = observer.failedBySpillway();
  const notes = { ...run.notes } as Record<string, unknown>;
  if (details.duplicates.length) notes.duplicates = details.duplicates;
  if (details.regressions.length) notes.regressions = details.regressions;
  if (details.atMostOne.length) notes.atMostOne = details.atMostOne;
  if (lost.length) notes.lost = lost.slice(0, 20);
  if (failed.length) notes.failedBySpillway = failed.slice(0, 20);
  if (run.problems.length) notes.unconverged = run.problems;
  return {
    name,
    faults: run.faults,
    pods: counts.mirrored,
    duplicates: counts.duplicates,
    orphans: run.orphans,
    lost: lost.length,
    failedBySpillway: failed.length,
    regressions: counts.regressions,
    atMostOne: counts.atMostOne,
    convergence: run.convergence,
    settled: run.settled,
    notReadyFlaps: counts.notReadyFlaps,
    leaseMaxAgeSeconds: counts.leaseMaxAgeSeconds,
    seconds: Math.round((Date.now() - run.started) / 1000),
    notes,
  };
}

/** Spillway SIGKILLed `kills` times, each in the middle of a round of churn, and started again. */
export function killScenario(scale: Scale): Scenario {
  return {
    name: `SIGKILL ×${scale.kills} during ${scale.kills * scale.podsPerKill}-pod churn`,
    runnable: () => true,
    async run(env, log) {
      const run = begin(env, log);
      for (let round = 1; round <= scale.kills; round++) {
        const before = Math.floor(scale.podsPerKill * (0.2 + 0.6 * Math.random()));
        await churn(run, before);
        await env.spillway.kill();
        run.faults++;
        await sleep(300 + Math.random() * 1200);
        env.spillway.start();
        const restarted = Date.now();
        log(`  kill ${round}/${scale.kills} after ${before} pods of the round`);
        await churn(run, scale.podsPerKill - before);
        await converge(run, restarted, scale.convergenceDeadlineMs);
      }
      return finish(run, this.name);
    },
  };
}

/** One cluster's API server restarted `restarts` times in the middle of churn. */
export function restartScenario(which: 'host' | 'remote', scale: Scale): Scenario {
  return {
    name: `${which} API server restarted ×${scale.restarts}`,
    runnable: (env) => env.clusters[which].restartApiserver !== undefined,
    async run(env, log) {
      const run = begin(env, log);
      const restart = env.clusters[which].restartApiserver as () => Promise<void>;
      for (let i = 1; i <= scale.restarts; i++) {
        await churn(run, Math.floor(scale.podsPerRestart / 2));
        const began = Date.now();
        await restart();
        run.faults++;
        const back = Date.now();
        log(
          `  restart ${i}/${scale.restarts}: ${which} API server back after ${((back - began) / 1000).toFixed(1)} s`,
        );
        await churn(run, Math.ceil(scale.podsPerRestart / 2));
        await converge(run, back, scale.convergenceDeadlineMs);
      }
      return finish(run, this.name);
    },
  };
}

/** Spillway cut off from the remote API server (a black hole) for `seconds`, while the remote runs on. */
export function partitionScenario(seconds: number, scale: Scale): Scenario {
  return {
    name: `remote partitioned ${seconds} s`,
    runnable: () => true,
    async run(env, log) {
      const run = begin(env, log);
      await churn(run, 20);
      await converge(run, Date.now(), scale.convergenceDeadlineMs, false);
      env.remoteProxy.partition();
      run.faults++;
      const cutAt = Date.now();
      // How many host pods wait Terminating meanwhile (evicted after their not-ready toleration).
      let terminating = 0;
      const sampler = setInterval(() => {
        terminating = Math.max(terminating, env.observer.terminatingPods());
      }, 250);
      // The host keeps changing meanwhile: pods scheduled, scaled away, deleted.
      await churn(run, 10, () => Date.now() - cutAt > seconds * 1000 * 0.6);
      await sleep(Math.max(0, cutAt + seconds * 1000 - Date.now()));
      clearInterval(sampler);
      env.remoteProxy.heal();
      run.notes.mostTerminatingDuringPartition = terminating;
      log(`  healed after ${((Date.now() - cutAt) / 1000).toFixed(1)} s`);
      await converge(run, Date.now(), scale.convergenceDeadlineMs);
      return finish(run, this.name);
    },
  };
}

/**
 * etcd compacted to its current revision in both clusters and both API servers restarted while Spillway
 * is cut off from them, so every watch of Spillway's resumes from a resourceVersion that is gone: 410.
 */
export function compactionScenario(scale: Scale): Scenario {
  return {
    name: 'etcd compaction (410 Gone) in both clusters',
    runnable: (env) =>
      ['host', 'remote'].every((c) => {
        const cluster = env.clusters[c as 'host' | 'remote'];
        return cluster.compactEtcd !== undefined && cluster.restartApiserver !== undefined;
      }),
    async run(env, log) {
      const run = begin(env, log);
      const expiredBefore = (await env.spillway.logLines(/watch expired \(410\)/)).length;
      await churn(run, 10);
      // Spillway is cut off from the remote while its history goes: its watches there resume from a
      // resourceVersion that no longer exists. The host's API server restart alone does the same to its
      // host watches (its watch cache starts again at the current revision).
      env.remoteProxy.partition();
      run.faults++;
      await churn(run, 10);
      for (const which of ['remote', 'host'] as const) {
        const cluster = env.clusters[which];
        const revision = await (cluster.compactEtcd as () => Promise<number>)();
        await (cluster.restartApiserver as () => Promise<void>)();
        log(`  ${which}: etcd compacted to revision ${revision}, API server restarted`);
      }
      env.remoteProxy.heal();
      await converge(run, Date.now(), scale.convergenceDeadlineMs);
      run.notes.spillway410Relists =
        (await env.spillway.logLines(/watch expired \(410\)/)).length - expiredBefore;
      return finish(run, this.name);
    },
  };
}

/**
 * API Priority and Fairness rejecting every request of Spillway's remote identity for `stormSeconds`
 * while the host churns: sustained real 429s. The node must stay Ready and its lease renewed; once the
 * storm ends, everything converges.
 */
export function throttleScenario(scale: Scale): Scenario {
  return {
    name: `429 storm ${scale.stormSeconds} s (APF on the remote)`,
    runnable: () => true,
    async run(env, log) {
      const run = begin(env, log);
      const before = await env.throttle.requests();
      await env.throttle.on();
      run.faults++;
      const stormStart = Date.now();
      await churn(run, scale.stormPods, () => Date.now() - stormStart > scale.stormSeconds * 1000);
      await sleep(Math.max(0, stormStart + scale.stormSeconds * 1000 - Date.now()));
      const after = await env.throttle.requests();
      await env.throttle.off();
      const ended = Date.now();
      run.notes.rejected429 = after.rejected - before.rejected;
      run.notes.dispatched = after.dispatched - before.dispatched;
      log(
        `  the remote rejected ${run.notes.rejected429} of Spillway's requests with 429 and let ${run.notes.dispatched} through in ${Math.round((ended - stormStart) / 1000)} s`,
      );
      await converge(run, ended, scale.convergenceDeadlineMs);
      return finish(run, this.name);
    },
  };
}

export function allScenarios(scale: Scale): Scenario[] {
  return [
    killScenario(scale),
    restartScenario('host', scale),
    restartScenario('remote', scale),
    partitionScenario(10, scale),
    partitionScenario(60, scale),
    compactionScenario(scale),
    throttleScenario(scale),
  ];
}
