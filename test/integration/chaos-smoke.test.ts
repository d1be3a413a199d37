// The chaos suite's short scenario inside `npm test` (the full one is `npm run chaos`): Spillway, as its
// own process, SIGKILLed twice in the middle of churn and cut off from the remote for 10 s, on the
// shared clusters. An observer watching both clusters counts duplicates, orphans, lost pods, terminal
// regressions and at-most-one violations: all must be 0, and every fault must converge.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChaosEnvironment, prepare } from '../chaos/environment.ts';
import {
  FULL,
  killScenario,
  partitionScenario,
  type Scale,
  type ScenarioResult,
} from '../chaos/scenarios.ts';
import { clusters } from '../cluster/fixture.ts';
import { uniqueSuffix } from '../support/kube.ts';

const suffix = uniqueSuffix();
const smoke: Scale = { ...FULL, kills: 2, podsPerKill: 15, convergenceDeadlineMs: 90_000 };
let env: ChaosEnvironment;

beforeAll(async () => {
  env = await prepare(
    {
      host: { kubeconfig: clusters.host.kubeconfig, server: clusters.host.server },
      remote: { kubeconfig: clusters.remote.kubeconfig, server: clusters.remote.server },
      kubectl: clusters.kubectlBinary,
    },
    {
      dir: join(import.meta.dirname, '..', '..', '.spillway', `chaos-smoke-${suffix}`),
      suffix,
      statefulSets: 1,
      maxPods: 40,
    },
  );
});

afterAll(async () => {
  await env?.stop();
});

function expectClean(result: ScenarioResult) {
  expect(result.notes).not.toHaveProperty('unconverged');
  expect({
    duplicates: result.duplicates,
    orphans: result.orphans,
    lost: result.lost,
    failedBySpillway: result.failedBySpillway,
    regressions: result.regressions,
    atMostOne: result.atMostOne,
  }).toEqual({ duplicates: 0, orphans: 0, lost: 0, failedBySpillway: 0, regressions: 0, atMostOne: 0 });
  expect(result.convergence.every((seconds) => seconds !== null)).toBe(true);
  expect(result.settled.every((seconds) => seconds !== null)).toBe(true);
}

describe('chaos (smoke)', () => {
  it('loses nothing and runs nothing twice through SIGKILLs during churn', async () => {
    const result = await killScenario(smoke).run(env, () => {});
    expect(result.faults).toBe(2);
    expect(result.pods).toBeGreaterThanOrEqual(30);
    expectClean(result);
  });

  it('loses nothing and runs nothing twice through a 10 s partition from the remote', async () => {
    const result = await partitionScenario(10, smoke).run(env, () => {});
    expect(result.faults).toBe(1);
    expectClean(result);
  });
});
