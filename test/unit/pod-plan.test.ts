// The reconcile ladder, table-tested with plain objects: plan(hostPod, delegate, facts) → actions.
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { PodRecall } from '../../src/pods/memory.ts';
import { type PodAction, type PodFacts, plan } from '../../src/pods/plan.ts';

const NOW = Date.parse('2026-01-01T00:01:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

type Owner = 'StatefulSet' | 'ReplicaSet' | 'Job' | undefined;

function host(
  options: {
    phase?: string;
    owner?: Owner;
    deleting?: { at: number; grace: number };
    delegated?: boolean;
    volumes?: NonNullable<V1Pod['spec']>['volumes'];
    annotations?: Record<string, string>;
  } = {},
): V1Pod {
  return {
    metadata: {
      name: 'web-1',
      namespace: 'shop',
      uid: 'host-uid',
      resourceVersion: '10',
      annotations: options.annotations,
      ...(options.owner
        ? {
            ownerReferences: [
              { apiVersion: 'apps/v1', kind: options.owner, name: 'web', uid: 'o', controller: true },
            ],
          }
        : {}),
      ...(options.deleting
        ? {
            deletionTimestamp: iso(options.deleting.at) as never,
            deletionGracePeriodSeconds: options.deleting.grace,
          }
        : {}),
    },
    spec: { containers: [{ name: 'main', image: 'nginx' }], volumes: options.volumes },
    status: {
      phase: options.phase ?? 'Pending',
      conditions: options.delegated
        ? [{ type: 'spillway.dev/Delegated', status: 'True', reason: 'DelegateCreated', message: 'x' }]
        : [],
    },
  };
}

function delegate(
  options: {
    phase?: string;
    uid?: string;
    hostUid?: string;
    deleting?: boolean;
    unschedulable?: boolean;
    rv?: string;
  } = {},
): V1Pod {
  return {
    metadata: {
      name: 'web-1',
      namespace: 'shop',
      uid: options.uid ?? 'delegate-uid',
      resourceVersion: options.rv ?? '7',
      labels: { 'spillway.dev/host-pod-uid': options.hostUid ?? 'host-uid' },
      ...(options.deleting ? { deletionTimestamp: iso(NOW - 1000) as never } : {}),
    },
    spec: { containers: [{ name: 'main', image: 'nginx' }] },
    status: {
      phase: options.phase ?? 'Running',
      conditions: options.unschedulable
        ? [
            {
              type: 'PodScheduled',
              status: 'False',
              reason: 'Unschedulable',
              message: '0/3 nodes are available',
            },
          ]
        : [{ type: 'Ready', status: 'True' }],
    },
  };
}

interface FactsOverrides extends Partial<Omit<PodFacts, 'recall' | 'policy'>> {
  readonly recall?: Partial<PodRecall>;
  readonly policy?: Partial<PodFacts['policy']>;
  readonly deleteRequestedAt?: (uid: string | undefined) => number | undefined;
}

/** Facts of a healthy remote; `desired` counts its calls (a no-op reconcile must not forge). */
function facts(overrides: FactsOverrides = {}) {
  const forged = { count: 0 };
  const value: PodFacts = {
    now: NOW,
    delegateKey: 'shop/web-1',
    remoteName: 'west',
    synced: { hostPods: true, delegates: true },
    remote: 'reachable',
    nodeOutOfService: false,
    delegatesCurrentThrough: NOW - 2000,
    mode: 'run',
    deleteRequestedAt: () => undefined,
    hostIP: '127.0.0.1',
    admission: () => undefined,
    references: () => ({ missing: [], conflicts: [], references: [] }),
    ...overrides,
    desired: () => {
      forged.count++;
      return delegate({ phase: undefined });
    },
    recall: { announced: new Set(), ...overrides.recall },
    policy: {
      unschedulable: { policy: 'wait', timeoutSeconds: 300 },
      statusSettleMs: 0,
      deletionCost: -100,
      deletionCostAllowed: true,
      releaseKinds: new Set(),
      ...overrides.policy,
    },
  };
  return { value, forged };
}

const kinds = (actions: PodAction[]) => actions.map((a) => a.kind);
const find = <K extends PodAction['kind']>(actions: PodAction[], kind: K) =>
  actions.find((a): a is Extract<PodAction, { kind: K }> => a.kind === kind);
const reasonOf = (actions: PodAction[]) => find(actions, 'refuse')?.reason;

/** A delegate whose status the host pod already shows (mirrored earlier). */
function mirrored(): { hostPod: V1Pod; delegatePod: V1Pod } {
  const delegatePod = delegate();
  const hostPod = host({ phase: 'Pending' });
  const { value } = facts();
  const first = plan(hostPod, delegatePod, value);
  const write = find(first, 'writeStatus');
  hostPod.status = write?.write.status;
  return { hostPod, delegatePod };
}

describe('plan: the way in', () => {
  const cases: {
    name: string;
    hostPod: V1Pod | undefined;
    delegate?: V1Pod;
    facts?: FactsOverrides;
    expect: PodAction['kind'][];
    reason?: string;
  }[] = [
    {
      name: 'waits until the host caches are synced',
      hostPod: host(),
      facts: { synced: { hostPods: false, delegates: true } },
      expect: ['requeue'],
    },
    {
      name: 'waits until the delegate cache is synced',
      hostPod: host(),
      facts: { synced: { hostPods: true, delegates: false } },
      expect: ['requeue'],
    },
    {
      name: 'collects a delegate whose host pod is gone',
      hostPod: undefined,
      delegate: delegate(),
      expect: ['forget', 'deleteDelegate'],
    },
    {
      name: 'does not delete an orphan twice',
      hostPod: undefined,
      delegate: delegate({ deleting: true }),
      expect: ['forget'],
    },
    {
      name: 'leaves an orphan of an unreachable remote for later',
      hostPod: undefined,
      delegate: delegate(),
      facts: { remote: 'unreachable' },
      expect: ['forget'],
    },
    {
      name: 'deletes an earlier namesake’s delegate before anything else',
      hostPod: host(),
      delegate: delegate({ hostUid: 'earlier-uid' }),
      expect: ['deleteDelegate', 'requeue'],
    },
    {
      name: 'creates the delegate of a new pod',
      hostPod: host(),
      expect: ['createDelegate'],
    },
    {
      name: 'waits for the informer to show a delegate just created',
      hostPod: host(),
      facts: { recall: { createdAt: NOW - 1000 } },
      expect: ['requeue'],
    },
    {
      name: 'fails the pod when its delegate vanished (created by us, not seen any more)',
      hostPod: host(),
      facts: { recall: { createdAt: NOW - 60_000 } },
      expect: ['refuse'],
      reason: 'DelegateDeleted',
    },
    {
      name: 'waits while the delegate cache has not caught up with a create (its watch was broken)',
      hostPod: host(),
      facts: { recall: { createdAt: NOW - 60_000 }, delegatesCurrentThrough: NOW - 90_000 },
      expect: ['requeue'],
    },
    {
      name: 'waits for a create whose answer was lost while the delegate cache lags behind it',
      hostPod: host(),
      facts: { recall: { attemptedAt: NOW - 60_000 }, delegatesCurrentThrough: NOW - 61_000 },
      expect: ['requeue'],
    },
    {
      name: 'fails the pod when its delegate vanished (the host pod said it was delegated)',
      hostPod: host({ phase: 'Running', delegated: true }),
      expect: ['refuse'],
      reason: 'DelegateDeleted',
    },
    {
      name: 'refuses a pod with a persistent volume claim, for good',
      hostPod: host({ volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }] }),
      expect: ['refuse', 'giveUp'],
      reason: 'UnsupportedVolume',
    },
    {
      name: 'publishes the capped capacity before refusing a pod no remote node can take',
      hostPod: host(),
      facts: { admission: () => ({ reason: 'OutOfcpu', message: 'no room', forCapacity: true }) },
      expect: ['flushCapacity', 'refuse'],
      reason: 'OutOfcpu',
    },
    {
      name: 'holds a pod whose mandatory ConfigMap is missing',
      hostPod: host(),
      facts: {
        references: () => ({
          missing: [{ kind: 'ConfigMap', name: 'settings', optional: false }],
          conflicts: [],
          references: [],
        }),
      },
      expect: ['refuse', 'requeue'],
      reason: 'MissingReference',
    },
    {
      name: 'holds a pod whose copy name is taken by someone else’s object',
      hostPod: host(),
      facts: {
        references: () => ({ missing: [], conflicts: ['ConfigMap x is not ours'], references: [] }),
      },
      expect: ['refuse', 'requeue'],
      reason: 'ReflectionConflict',
    },
    {
      name: 'says the remote forbids the delegate, and waits out the back-off',
      hostPod: host(),
      facts: { recall: { outcome: { kind: 'forbidden', message: 'quota', attempts: 3, at: NOW - 1000 } } },
      expect: ['refuse', 'requeue'],
      reason: 'DelegateForbidden',
    },
    {
      name: 'tries a forbidden delegate again after the back-off',
      hostPod: host(),
      facts: { recall: { outcome: { kind: 'forbidden', message: 'quota', attempts: 1, at: NOW - 5000 } } },
      expect: ['refuse', 'createDelegate'],
      reason: 'DelegateForbidden',
    },
    {
      name: 'fails for good a pod the remote rejects as invalid',
      hostPod: host(),
      facts: { recall: { outcome: { kind: 'rejected', message: 'bad', at: NOW - 10 } } },
      expect: ['refuse', 'giveUp'],
      reason: 'DelegateRejected',
    },
    {
      name: 'leaves a pod of another owner alone and says so',
      hostPod: host(),
      facts: { recall: { outcome: { kind: 'nameTaken', message: 'not ours', at: NOW - 10 } } },
      expect: ['refuse', 'requeue'],
      reason: 'DelegateNameConflict',
    },
    {
      name: 'does nothing for a running pod while its remote is unreachable (the cache is stale)',
      hostPod: host({ phase: 'Running' }),
      delegate: delegate({ phase: 'Failed' }),
      facts: { remote: 'unreachable' },
      expect: [],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const actions = plan(c.hostPod, c.delegate, facts(c.facts).value);
      expect(kinds(actions)).toEqual(c.expect);
      if (c.reason) expect(reasonOf(actions)).toBe(c.reason);
    });
  }

  it('writes the waiting containers of a pod held for a missing reference', () => {
    const { value } = facts({
      references: () => ({
        missing: [{ kind: 'Secret', name: 'token', optional: false }],
        conflicts: [],
        references: [],
      }),
    });
    const refusal = find(plan(host(), undefined, value), 'refuse');
    expect(refusal?.write.status.phase).toBe('Pending');
    expect(refusal?.write.status.containerStatuses?.[0]?.state?.waiting).toEqual({
      reason: 'CreateContainerConfigError',
      message: 'secret "token" not found',
    });
    expect(refusal?.write.resourceVersion).toBe('10');
  });

  it('creates what forge made, with the references its copies need', () => {
    const references = [{ kind: 'ConfigMap' as const, name: 'settings', optional: false }];
    const { value, forged } = facts({ references: () => ({ missing: [], conflicts: [], references }) });
    const create = find(plan(host(), undefined, value), 'createDelegate');
    expect(create?.references).toEqual(references);
    expect(forged.count).toBe(1);
  });
});

describe('plan: a running pod', () => {
  it('mirrors the delegate’s status with the host pod’s resourceVersion as precondition', () => {
    const { value } = facts();
    const actions = plan(host(), delegate(), value);
    const write = find(actions, 'writeStatus')?.write;
    expect(write?.status.phase).toBe('Running');
    expect(write?.status.hostIP).toBe('127.0.0.1');
    expect(write?.resourceVersion).toBe('10');
    expect(kinds(actions)).toEqual(['markSpecInSync', 'writeStatus']);
  });

  it('uses the resourceVersion of its own last write until the informer has it', () => {
    const { value } = facts({
      recall: { writtenStatus: { resourceVersion: '11', status: { phase: 'Pending' } } },
    });
    expect(find(plan(host(), delegate(), value), 'writeStatus')?.write.resourceVersion).toBe('11');
  });

  it('makes no API call and forges nothing when nothing changed', () => {
    const { hostPod, delegatePod } = mirrored();
    const { value, forged } = facts({ recall: { specInSync: { host: '10', delegate: '7' } } });
    expect(plan(hostPod, delegatePod, value)).toEqual([]);
    expect(forged.count).toBe(0);
  });

  it('forges again only when a resourceVersion moved, and notes the match', () => {
    const { hostPod, delegatePod } = mirrored();
    const { value, forged } = facts({ recall: { specInSync: { host: '10', delegate: '6' } } });
    expect(plan(hostPod, delegatePod, value)).toEqual([
      { kind: 'markSpecInSync', host: '10', delegate: '7' },
    ]);
    expect(forged.count).toBe(1);
  });

  it('pushes an allowed spec change down with the delegate’s resourceVersion', () => {
    const { hostPod, delegatePod } = mirrored();
    const base = facts();
    const changed: PodFacts = {
      ...base.value,
      desired: () => ({ ...delegate(), spec: { containers: [{ name: 'main', image: 'nginx:2' }] } }),
    };
    const patch = find(plan(hostPod, delegatePod, changed), 'patchDelegate');
    expect(patch?.resourceVersion).toBe('7');
    expect(patch?.target.uid).toBe('delegate-uid');
    expect(patch?.patch).toMatchObject({ spec: { containers: [{ name: 'main', image: 'nginx:2' }] } });
  });

  it('keeps a pod whose delegate is being deleted in the remote, not by Spillway, until it has stopped', () => {
    const actions = plan(host({ phase: 'Running' }), delegate({ deleting: true }), facts().value);
    expect(find(actions, 'event')?.reason).toBe('DelegateTerminating');
    expect(find(actions, 'refuse')).toBeUndefined();
    expect(find(actions, 'patchDelegate')).toBeUndefined();
    const phases = actions.flatMap((a) => (a.kind === 'writeStatus' ? [a.write.status.phase] : []));
    expect(phases).not.toContain('Failed');
  });

  it('fails the pod when its delegate deleted in the remote has finished', () => {
    const stopped = delegate({ deleting: true, phase: 'Failed' });
    const actions = plan(host({ phase: 'Running' }), stopped, facts().value);
    expect(find(actions, 'writeStatus')?.write.status.phase).toBe('Failed');
  });

  it('does not fail the pod for a delete Spillway asked for', () => {
    const actions = plan(
      host({ phase: 'Running' }),
      delegate({ deleting: true }),
      facts({ deleteRequestedAt: () => NOW - 60_000 }).value,
    );
    expect(reasonOf(actions)).toBeUndefined();
  });

  it('fails an unschedulable delegate after the configured time (policy fail), then stops it', () => {
    const actions = plan(
      host(),
      delegate({ phase: 'Pending', unschedulable: true }),
      facts({
        policy: { unschedulable: { policy: 'fail', timeoutSeconds: 3 } },
        recall: { unschedulableSince: NOW - 5000 },
      }).value,
    );
    expect(kinds(actions)).toContain('deleteDelegate');
    expect(reasonOf(actions)).toBe('RemoteUnschedulable');
  });

  it('notes when a delegate became unschedulable and says why on the host pod', () => {
    const actions = plan(host(), delegate({ phase: 'Pending', unschedulable: true }), facts().value);
    expect(find(actions, 'markUnschedulable')?.since).toBe(NOW);
    const condition = find(actions, 'writeStatus')?.write.status.conditions?.find(
      (c) => c.type === 'spillway.dev/Delegated',
    );
    expect(condition?.reason).toBe('RemoteUnschedulable');
  });

  it('lets a just-created Pending delegate settle before writing its status', () => {
    const actions = plan(
      host(),
      delegate({ phase: 'Pending' }),
      facts({ policy: { statusSettleMs: 1000 }, recall: { createdAt: NOW - 200 } }).value,
    );
    expect(actions.at(-1)).toEqual({ kind: 'requeue', afterMs: 800 });
    expect(kinds(actions)).not.toContain('writeStatus');
  });

  it('sets the deletion cost of a ReplicaSet’s pod after its status, once', () => {
    const actions = plan(host({ owner: 'ReplicaSet' }), delegate(), facts().value);
    expect(kinds(actions).slice(-2)).toEqual(['writeStatus', 'setDeletionCost']);
    const again = plan(
      host({ owner: 'ReplicaSet' }),
      delegate(),
      facts({ recall: { deletionCostSet: true } }).value,
    );
    expect(kinds(again)).not.toContain('setDeletionCost');
    const theirs = plan(
      host({ owner: 'ReplicaSet', annotations: { 'controller.kubernetes.io/pod-deletion-cost': '5' } }),
      delegate(),
      facts().value,
    );
    expect(kinds(theirs)).not.toContain('setDeletionCost');
  });

  it('never brings a terminal pod back, and stops a delegate still running', () => {
    expect(kinds(plan(host({ phase: 'Failed' }), delegate(), facts().value))).toEqual(['deleteDelegate']);
    expect(plan(host({ phase: 'Succeeded' }), delegate({ phase: 'Succeeded' }), facts().value)).toEqual([]);
    expect(plan(host({ phase: 'Succeeded' }), undefined, facts().value)).toEqual([]);
  });
});

describe('plan: deletes', () => {
  it('does not ask again for a delete asked a moment ago (the cache may lag)', () => {
    const actions = plan(undefined, delegate(), facts({ deleteRequestedAt: () => NOW - 1000 }).value);
    expect(actions).toEqual([{ kind: 'forget' }, { kind: 'requeue', afterMs: 4000 }]);
  });

  it('does not finalise again a host pod finalised a moment ago (the informer may still show it)', () => {
    const deleting = host({ phase: 'Running', deleting: { at: NOW + 20_000, grace: 30 } });
    const uid = deleting.metadata?.uid;
    const recent = facts({ deleteRequestedAt: (u) => (u === uid ? NOW - 1000 : undefined) }).value;
    expect(plan(deleting, undefined, recent)).toEqual([
      { kind: 'forget' },
      { kind: 'requeue', afterMs: 4000 },
    ]);
    const later = facts({ deleteRequestedAt: (u) => (u === uid ? NOW - 6000 : undefined) }).value;
    expect(kinds(plan(deleting, undefined, later))).toEqual(['forget', 'finalize']);
  });

  it('asks again once the repeat window is over', () => {
    const actions = plan(undefined, delegate(), facts({ deleteRequestedAt: () => NOW - 6000 }).value);
    expect(kinds(actions)).toEqual(['forget', 'deleteDelegate']);
  });
});

describe('plan: a host pod being deleted', () => {
  const inGrace = { at: NOW + 20_000, grace: 30 };
  const overdue = { at: NOW - 10_000, grace: 30 };
  const cases: {
    name: string;
    hostPod: V1Pod;
    delegate?: V1Pod;
    facts?: FactsOverrides;
    expect: PodAction['kind'][];
    grace?: number;
  }[] = [
    {
      name: 'deletes the delegate with the host pod’s grace period',
      hostPod: host({ phase: 'Running', deleting: inGrace }),
      delegate: delegate(),
      expect: ['deleteDelegate', 'requeue'],
      grace: 30,
    },
    {
      name: 'finalises the host pod once the delegate is gone',
      hostPod: host({ phase: 'Running', deleting: inGrace }),
      expect: ['forget', 'finalize'],
    },
    {
      name: 'waits for a delegate just created to show before finalising',
      hostPod: host({ deleting: inGrace }),
      facts: { recall: { createdAt: NOW - 500 } },
      expect: ['requeue'],
    },
    {
      name: 'finalises at once when the delegate has finished',
      hostPod: host({ phase: 'Running', deleting: inGrace }),
      delegate: delegate({ phase: 'Succeeded' }),
      expect: ['deleteDelegate', 'forget', 'finalize'],
      grace: 0,
    },
    {
      name: 'does not force a bare pod’s delegate after the grace period: it waits for it',
      hostPod: host({ phase: 'Running', deleting: overdue }),
      delegate: delegate({ deleting: true }),
      facts: { deleteRequestedAt: () => NOW - 60_000 },
      expect: ['event', 'requeue'],
    },
    {
      name: 'forces a releasable kind’s delegate after the grace period',
      hostPod: host({ phase: 'Running', owner: 'ReplicaSet', deleting: overdue }),
      delegate: delegate({ deleting: true }),
      facts: { policy: { releaseKinds: new Set(['ReplicaSet']) } },
      expect: ['deleteDelegate', 'requeue'],
      grace: 0,
    },
    {
      name: 'keeps a StatefulSet pod Terminating while its remote is unreachable',
      hostPod: host({ phase: 'Running', owner: 'StatefulSet', deleting: overdue }),
      delegate: delegate(),
      facts: { remote: 'unreachable' },
      expect: ['event', 'requeue'],
    },
    {
      name: 'keeps a StatefulSet pod Terminating even if the policy were to name StatefulSet',
      hostPod: host({ phase: 'Running', owner: 'StatefulSet', deleting: overdue }),
      delegate: delegate(),
      facts: { remote: 'unreachable', policy: { releaseKinds: new Set(['StatefulSet']) } },
      expect: ['event', 'requeue'],
    },
    {
      name: 'keeps a bare pod Terminating while its remote is unreachable',
      hostPod: host({ phase: 'Running', deleting: overdue }),
      delegate: delegate(),
      facts: { remote: 'unreachable', policy: { releaseKinds: new Set(['ReplicaSet', 'Job']) } },
      expect: ['event', 'requeue'],
    },
    {
      name: 'keeps a pod Terminating whose delegate creation was sent just before the outage',
      hostPod: host({ deleting: overdue }),
      facts: { remote: 'unreachable', recall: { attemptedAt: NOW - 60_000 } },
      expect: ['event', 'requeue'],
    },
    {
      name: 'releases a ReplicaSet pod after its grace when the policy names ReplicaSet',
      hostPod: host({ phase: 'Running', owner: 'ReplicaSet', deleting: overdue }),
      delegate: delegate(),
      facts: { remote: 'unreachable', policy: { releaseKinds: new Set(['ReplicaSet']) } },
      expect: ['event', 'forget', 'finalize'],
    },
    {
      name: 'does not release a ReplicaSet pod before its grace is over',
      hostPod: host({ phase: 'Running', owner: 'ReplicaSet', deleting: inGrace }),
      delegate: delegate(),
      facts: { remote: 'unreachable', policy: { releaseKinds: new Set(['ReplicaSet']) } },
      expect: ['event', 'requeue'],
    },
    {
      name: 'releases a StatefulSet pod when the operator declares the node out of service',
      hostPod: host({ phase: 'Running', owner: 'StatefulSet', deleting: inGrace }),
      delegate: delegate(),
      facts: { remote: 'unreachable', nodeOutOfService: true },
      expect: ['event', 'forget', 'finalize'],
    },
    {
      name: 'keeps a pod Terminating when the remote was never reached since start',
      hostPod: host({ phase: 'Running', deleting: overdue }),
      facts: { remote: 'unreachable', synced: { hostPods: true, delegates: false } },
      expect: ['event', 'requeue'],
    },
    {
      name: 'releases it then too when the node is out of service',
      hostPod: host({ phase: 'Running', deleting: overdue }),
      facts: { remote: 'unreachable', nodeOutOfService: true, synced: { hostPods: true, delegates: false } },
      expect: ['event', 'forget', 'finalize'],
    },
    {
      name: 'finalises a pod whose delegate has finished even while the remote is unreachable',
      hostPod: host({ phase: 'Running', deleting: overdue }),
      delegate: delegate({ phase: 'Failed' }),
      facts: { remote: 'unreachable' },
      expect: ['forget', 'finalize'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const actions = plan(c.hostPod, c.delegate, facts(c.facts).value);
      expect(kinds(actions)).toEqual(c.expect);
      if (c.grace !== undefined) expect(find(actions, 'deleteDelegate')?.gracePeriodSeconds).toBe(c.grace);
    });
  }

  it('says once why the pod stays Terminating', () => {
    const actions = plan(
      host({ phase: 'Running', owner: 'StatefulSet', deleting: overdue }),
      delegate(),
      facts({ remote: 'unreachable' }).value,
    );
    expect(find(actions, 'event')).toMatchObject({ reason: 'DelegateUnreachable', once: true });
    expect(find(actions, 'event')?.message).toContain('node.kubernetes.io/out-of-service');
  });
});

describe('plan: a remote being removed', () => {
  const drain: FactsOverrides = { mode: 'drain' };
  it('deletes the delegate first, and fails the host pod only once it is gone', () => {
    expect(kinds(plan(host({ phase: 'Running' }), delegate(), facts(drain).value))).toEqual([
      'deleteDelegate',
      'requeue',
    ]);
    expect(kinds(plan(host({ phase: 'Running' }), delegate({ deleting: true }), facts(drain).value))).toEqual(
      ['requeue'],
    );
    const actions = plan(host({ phase: 'Running', delegated: true }), undefined, facts(drain).value);
    expect(reasonOf(actions)).toBe('RemoteClusterRemoved');
    expect(find(actions, 'refuse')?.write.status.phase).toBe('Failed');
  });

  it('waits for a remote that cannot be reached', () => {
    expect(
      kinds(plan(host({ phase: 'Running' }), delegate(), facts({ ...drain, remote: 'unreachable' }).value)),
    ).toEqual(['requeue']);
  });

  it('deletes the finished delegates of finished pods too', () => {
    expect(
      kinds(plan(host({ phase: 'Succeeded' }), delegate({ phase: 'Succeeded' }), facts(drain).value)),
    ).toEqual(['deleteDelegate']);
  });
});
