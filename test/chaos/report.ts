// The chaos suite's result table (Markdown, as it goes into the README) and its goals.
import type { ScenarioResult } from './scenarios.ts';

export const CONVERGENCE_GOAL_SECONDS = 30;

function convergence(values: (number | null)[]): string {
  if (values.length === 0) return '–';
  const done = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  const failed = values.length - done.length;
  const p50 = done[Math.floor((done.length - 1) / 2)];
  const max = done.at(-1);
  const text = done.length ? `${p50} / ${max}` : '';
  return failed ? `${text}${text ? ', ' : ''}${failed} not converged` : text;
}

export function table(results: readonly ScenarioResult[]): string {
  const header = [
    'scenario',
    'faults',
    'pods',
    'duplicates',
    'orphans',
    'lost',
    'failed by Spillway',
    'terminal regressions',
    'at-most-one violations',
    'convergence p50 / max (s)',
    'workloads settled p50 / max (s)',
    'NotReady flaps',
    'lease max age (s)',
    'run (s)',
  ];
  const rows = results.map((r) => [
    r.name,
    r.faults,
    r.pods,
    r.duplicates,
    r.orphans,
    r.lost,
    r.failedBySpillway,
    r.regressions,
    r.atMostOne,
    convergence(r.convergence),
    convergence(r.settled),
    r.notReadyFlaps,
    r.leaseMaxAgeSeconds,
    r.seconds,
  ]);
  return [header, header.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
}

/**
 * What misses the goals: any invariant count above 0, a fault not converged or converged too slowly
 * (the clusters' agreement; settling also waits on the clusters' own controllers, and is reported).
 */
export function shortfalls(results: readonly ScenarioResult[], { throttled = /429/ } = {}): string[] {
  const misses: string[] = [];
  for (const r of results) {
    const counts = {
      duplicates: r.duplicates,
      orphans: r.orphans,
      lost: r.lost,
      'failed by Spillway': r.failedBySpillway,
      'terminal regressions': r.regressions,
      'at-most-one violations': r.atMostOne,
    };
    for (const [what, count] of Object.entries(counts))
      if (count > 0) misses.push(`${r.name}: ${count} ${what}`);
    const slow = r.convergence.filter((v) => v === null || v > CONVERGENCE_GOAL_SECONDS);
    if (slow.length)
      misses.push(`${r.name}: ${slow.length} faults converged later than ${CONVERGENCE_GOAL_SECONDS} s`);
    // Under the 429 storm the node must not flap and the lease must not lapse (40 s).
    if (throttled.test(r.name) && r.notReadyFlaps > 0)
      misses.push(`${r.name}: ${r.notReadyFlaps} NotReady flaps`);
    if (throttled.test(r.name) && r.leaseMaxAgeSeconds >= 40) misses.push(`${r.name}: lease lapsed`);
  }
  return misses;
}
