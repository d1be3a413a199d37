import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { failedStatus, hostStatusFromDelegate, statusesEqual, type Verdict } from '../../src/pods/status.ts';

const verdict: Verdict = {
  status: 'True',
  reason: 'DelegateCreated',
  message: 'running as shop/web-1 in remote cluster west',
};
const context = { hostIP: '127.0.0.1', now: '2026-01-01T00:00:10Z' };

function host(status: V1Pod['status'] = {}, spec: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    metadata: { name: 'web-1', namespace: 'shop', uid: 'uid-1' },
    spec: { containers: [{ name: 'main', image: 'nginx' }], ...spec },
    status: {
      phase: 'Pending',
      qosClass: 'BestEffort',
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' as never },
        { type: 'example.com/lb', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' as never },
      ],
      ...status,
    },
  };
}

const running: V1Pod = {
  status: {
    phase: 'Running',
    podIP: '10.244.0.7',
    podIPs: [{ ip: '10.244.0.7' }],
    hostIP: '127.0.0.9',
    startTime: '2026-01-01T00:00:05Z' as never,
    qosClass: 'Guaranteed',
    conditions: [
      { type: 'PodScheduled', status: 'True', lastTransitionTime: '2026-01-01T00:00:04Z' as never },
      { type: 'Initialized', status: 'True', lastTransitionTime: '2026-01-01T00:00:05Z' as never },
      { type: 'ContainersReady', status: 'True', lastTransitionTime: '2026-01-01T00:00:06Z' as never },
      { type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T00:00:06Z' as never },
    ],
    containerStatuses: [
      {
        name: 'main',
        image: 'nginx',
        imageID: 'docker.io/nginx@sha256:1',
        ready: true,
        restartCount: 2,
        state: { running: { startedAt: '2026-01-01T00:00:06Z' as never } },
      },
    ],
  },
};

describe('hostStatusFromDelegate', () => {
  it('mirrors phase, containers, IPs and start time, with the virtual node as host', () => {
    const status = hostStatusFromDelegate(host(), running, verdict, context);
    expect(status.phase).toBe('Running');
    expect(status.podIP).toBe('10.244.0.7');
    expect(status.hostIP).toBe('127.0.0.1');
    expect(status.hostIPs).toEqual([{ ip: '127.0.0.1' }]);
    expect(status.startTime).toBe('2026-01-01T00:00:05Z');
    expect(status.containerStatuses?.[0]).toMatchObject({
      restartCount: 2,
      imageID: 'docker.io/nginx@sha256:1',
      ready: true,
    });
    // The host keeps its own QoS class and the conditions other controllers set.
    expect(status.qosClass).toBe('BestEffort');
    const types = status.conditions?.map((c) => `${c.type}=${c.status}`);
    expect(types).toEqual([
      'PodScheduled=True',
      'example.com/lb=True',
      'Initialized=True',
      'ContainersReady=True',
      'Ready=True',
      'spillway.dev/Delegated=True',
    ]);
    // The host's PodScheduled is the host scheduler's, not the remote's.
    expect(status.conditions?.[0]?.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
  });

  it('gives the same status again for the same delegate (an unchanged pod costs no write)', () => {
    const first = hostStatusFromDelegate(host(), running, verdict, context);
    const later = { ...context, now: '2026-01-01T00:05:00Z' };
    const again = hostStatusFromDelegate(host(first), running, verdict, later);
    expect(statusesEqual(first, again)).toBe(true);
  });

  it('keeps Ready False until the host pod’s own readiness gates pass', () => {
    const gated = host({}, { readinessGates: [{ conditionType: 'example.com/missing' }] });
    const status = hostStatusFromDelegate(gated, running, verdict, context);
    expect(status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ReadinessGatesNotReady',
    });
    const passing = host({}, { readinessGates: [{ conditionType: 'example.com/lb' }] });
    expect(
      hostStatusFromDelegate(passing, running, verdict, context).conditions?.find((c) => c.type === 'Ready')
        ?.status,
    ).toBe('True');
  });

  it('never brings a terminal host pod back', () => {
    const done = host({ phase: 'Succeeded' });
    const status = hostStatusFromDelegate(done, { status: { phase: 'Pending' } }, verdict, context);
    expect(status.phase).toBe('Succeeded');
  });

  it('mirrors an eviction with its reason and message', () => {
    const evicted = hostStatusFromDelegate(
      host({ phase: 'Running' }),
      { status: { phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' } },
      verdict,
      context,
    );
    expect(evicted).toMatchObject({
      phase: 'Failed',
      reason: 'Evicted',
      message: 'The node was low on resource: memory.',
    });
  });
});

describe('failedStatus', () => {
  it('fails the pod with the reason, terminating its containers and keeping their history', () => {
    const before = hostStatusFromDelegate(host(), running, verdict, context);
    const status = failedStatus(host(before), 'DelegateDeleted', 'delegate deleted in the remote', context);
    expect(status).toMatchObject({
      phase: 'Failed',
      reason: 'DelegateDeleted',
      message: 'delegate deleted in the remote',
    });
    expect(status.containerStatuses?.[0]).toMatchObject({
      name: 'main',
      restartCount: 2,
      ready: false,
      state: { terminated: { exitCode: 137, reason: 'DelegateDeleted' } },
    });
    expect(status.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
  });
});

describe('statusesEqual', () => {
  it('ignores key order, sub-second precision and Date versus string', () => {
    expect(
      statusesEqual(
        { phase: 'Running', startTime: new Date('2026-01-01T00:00:05.123Z') },
        { startTime: '2026-01-01T00:00:05Z' as never, phase: 'Running' },
      ),
    ).toBe(true);
    expect(statusesEqual({ phase: 'Running' }, { phase: 'Pending' })).toBe(false);
  });
});
