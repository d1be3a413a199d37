// The planner's workload steps, table-tested with plain objects: the pod's own Secret before its
// delegate and while it runs (token refresh, back-off), its removal with the pod, namespace policy and
// claim verdicts, and changes a running pod takes through subresources.
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { type PodAction, type PodFacts, plan } from '../../src/pods/plan.ts';
import type { PodSecretFacts } from '../../src/pods/plan-workload.ts';
import type { PodSecretView } from '../../src/pods/pod-secret.ts';
import { podSecretSpec } from '../../src/pods/workload.ts';

const NOW = 10_000_000;
const scope = { hostClusterName: 'east', nodeName: 'spillway-west' };

function hostPod(extra: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return {
    metadata: { name: 'api', namespace: 'shop', uid: 'host-uid', resourceVersion: '10' },
    spec: {
      containers: [{ name: 'main', image: 'app', resources: { requests: { cpu: '100m' } } }],
      volumes: [
        { name: 'kube-api-access-x', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } },
      ],
      ...extra,
    },
    status: { phase: 'Running', conditions: [] },
  };
}

function delegate(extra: Partial<NonNullable<V1Pod['spec']>> = {}): V1Pod {
  return {
    metadata: {
      name: 'api',
      namespace: 'shop',
      uid: 'delegate-uid',
      resourceVersion: '7',
      labels: { 'spillway.dev/host-pod-uid': 'host-uid' },
    },
    spec: {
      containers: [{ name: 'main', image: 'app', resources: { requests: { cpu: '100m' } } }],
      ...extra,
    },
    status: { phase: 'Running' },
  };
}

const desired = podSecretSpec(hostPod(), scope, 'shop', 'host');
const view = (issuedAt: number, extra: Partial<PodSecretView> = {}): PodSecretView => ({
  namespace: 'shop',
  name: 'api.pod.east.spillway-west',
  uid: 'secret-uid',
  resourceVersion: '3',
  hostPodUid: 'host-uid',
  downwardHash: desired?.downwardHash ?? '',
  tokens: { 'token-0': { issuedAt, expiresAt: issuedAt + 3_600_000, expirationSeconds: 3600 } },
  ...extra,
});

function facts(overrides: Partial<PodFacts> & { secret?: Partial<PodSecretFacts> } = {}): PodFacts {
  const { secret, ...rest } = overrides;
  return {
    now: NOW,
    delegateKey: 'shop/api',
    remoteName: 'west',
    synced: { hostPods: true, delegates: true },
    delegatesCurrentThrough: NOW,
    remote: 'reachable',
    nodeOutOfService: false,
    mode: 'run',
    recall: { announced: new Set(), specInSync: { host: '10', delegate: '7' } },
    deleteRequestedAt: () => undefined,
    policy: {
      unschedulable: { policy: 'wait', timeoutSeconds: 300 },
      statusSettleMs: 0,
      deletionCost: null,
      deletionCostAllowed: true,
      releaseKinds: new Set(),
    },
    hostIP: '127.0.0.1',
    desired: () => delegate(),
    admission: () => undefined,
    references: () => ({ missing: [], conflicts: [], references: [] }),
    podSecret: () => ({ desired, maxTokenAgeMs: 86_400_000, ...secret }),
    ...rest,
  };
}

const kinds = (actions: PodAction[]) => actions.map((a) => a.kind);
const find = <K extends PodAction['kind']>(actions: PodAction[], kind: K) =>
  actions.find((a): a is Extract<PodAction, { kind: K }> => a.kind === kind);

describe('the pod’s own Secret', () => {
  it('is written before the delegate is created, with every token', () => {
    const actions = plan(hostPod(), undefined, facts());
    expect(kinds(actions)).toEqual(['writePodSecret', 'createDelegate']);
    expect(find(actions, 'writePodSecret')?.write.issue).toEqual(['token-0']);
  });

  it('holds the pod back while the host refuses its token, with a back-off', () => {
    const actions = plan(
      hostPod(),
      undefined,
      facts({ secret: { failure: { message: 'forbidden', at: NOW - 500, attempts: 2 } } }),
    );
    expect(kinds(actions)).toEqual(['refuse', 'requeue']);
    expect(find(actions, 'refuse')?.reason).toBe('ServiceAccountTokenFailed');
    expect(find(actions, 'requeue')?.afterMs).toBe(1500);
  });

  it('refuses a pod whose service-account choice is not allowed', () => {
    const refusal = {
      reason: 'HostAPIUnavailable',
      message: 'no host.externalServer',
      outcome: 'wait' as const,
    };
    expect(find(plan(hostPod(), undefined, facts({ secret: { refusal } })), 'refuse')?.reason).toBe(
      'HostAPIUnavailable',
    );
  });

  it('is left alone while fresh, and looked at again when its token is due', () => {
    const actions = plan(hostPod(), delegate(), facts({ secret: { current: view(NOW - 1000) } }));
    expect(kinds(actions).filter((k) => k !== 'writeStatus')).toEqual(['requeue']);
    expect(find(actions, 'requeue')?.afterMs).toBe(0.8 * 3_600_000 - 1000);
  });

  it('gets a new token at 80 % of its lifetime', () => {
    const actions = plan(hostPod(), delegate(), facts({ secret: { current: view(NOW - 0.8 * 3_600_000) } }));
    expect(find(actions, 'writePodSecret')?.write).toMatchObject({
      issue: ['token-0'],
      downwardChanged: false,
    });
  });

  it('waits out a refused refresh instead of asking again at once', () => {
    const actions = plan(
      hostPod(),
      delegate(),
      facts({
        secret: {
          current: view(NOW - 0.9 * 3_600_000),
          failure: { message: 'no', at: NOW - 100, attempts: 1 },
        },
      }),
    );
    expect(find(actions, 'writePodSecret')).toBeUndefined();
    expect(find(actions, 'requeue')?.afterMs).toBe(900);
  });

  it('goes with its host pod, and an earlier namesake’s goes first', () => {
    const orphan = plan(undefined, undefined, facts({ secret: { current: view(NOW) } }));
    expect(kinds(orphan)).toEqual(['forget', 'deletePodSecret']);
    const stale = plan(
      hostPod(),
      undefined,
      facts({ secret: { current: view(NOW, { hostPodUid: 'older' }) } }),
    );
    expect(kinds(stale)).toEqual(['deletePodSecret', 'requeue']);
  });
});

describe('verdicts before a delegate', () => {
  it('fails a pod its namespace does not allow here', () => {
    const actions = plan(
      hostPod(),
      undefined,
      facts({
        namespacePolicy: () => ({ reason: 'RemoteClusterNotAllowed', message: 'not here', outcome: 'fail' }),
      }),
    );
    expect(find(actions, 'refuse')?.write.status.phase).toBe('Failed');
  });

  it('keeps a pod waiting for its claim', () => {
    const actions = plan(
      hostPod(),
      undefined,
      facts({
        volumes: () => ({
          reason: 'WaitingForVolume',
          message: 'not bound',
          outcome: 'wait',
          retryAfterMs: 5000,
        }),
      }),
    );
    expect(kinds(actions)).toEqual(['refuse', 'requeue']);
    expect(find(actions, 'refuse')?.write.status.phase).toBe('Running');
  });

  it('refuses claims outright when storage support is off', () => {
    const pod = hostPod({ volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }] });
    const actions = plan(pod, undefined, facts({ podSecret: undefined }));
    expect(find(actions, 'refuse')?.reason).toBe('UnsupportedVolume');
    expect(kinds(actions)).toContain('giveUp');
  });
});

describe('a running pod’s subresources', () => {
  const moved = { recall: { announced: new Set<string>() }, podSecret: undefined };

  it('adds ephemeral containers the delegate lacks, before anything else changes', () => {
    const withDebug = () => delegate({ ephemeralContainers: [{ name: 'debugger', image: 'busybox' }] });
    const actions = plan(hostPod(), delegate(), facts({ ...moved, desired: withDebug }));
    expect(find(actions, 'addEphemeralContainers')).toMatchObject({
      resourceVersion: '7',
      containers: [{ name: 'debugger', image: 'busybox' }],
    });
  });

  it('resizes the delegate when the host pod was resized', () => {
    const bigger = () =>
      delegate({ containers: [{ name: 'main', image: 'app', resources: { requests: { cpu: '1' } } }] });
    const actions = plan(hostPod(), delegate(), facts({ ...moved, desired: bigger }));
    expect(find(actions, 'resizeDelegate')?.containers).toEqual([
      { name: 'main', init: false, resources: { requests: { cpu: '1' } } },
    ]);
  });

  it('creates a delegate without ephemeral containers (they cannot be set at creation)', () => {
    const withDebug = () => delegate({ ephemeralContainers: [{ name: 'debugger' }] });
    const create = find(
      plan(hostPod(), undefined, facts({ ...moved, desired: withDebug })),
      'createDelegate',
    );
    expect(create?.delegate.spec?.ephemeralContainers).toBeUndefined();
  });
});
