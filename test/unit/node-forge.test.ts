import { describe, expect, it } from 'vitest';
import { parseResourceList } from '../../src/kube/quantity.ts';
import { computeCapacity, type RemoteNode } from '../../src/node/capacity.ts';
import { computeConditions, conditionsEqual, stampConditions } from '../../src/node/conditions.ts';
import { desiredNode, isOwnedBy, kubeletVersion, mergeTaints } from '../../src/node/forge.ts';
import { commonLabels } from '../../src/node/labels.ts';

function node(
  name: string,
  labels: Record<string, string>,
  conditions: Record<string, string> = { Ready: 'True' },
): RemoteNode {
  return {
    name,
    labels,
    conditions,
    allocatable: parseResourceList({ cpu: '2', memory: '4Gi', pods: '10' }),
    unschedulable: false,
    taints: [],
  };
}

const nodes = [
  node('a', {
    'topology.kubernetes.io/region': 'eu',
    'topology.kubernetes.io/zone': 'eu-a',
    'kubernetes.io/hostname': 'a',
    gpu: 'none',
  }),
  node('b', {
    'topology.kubernetes.io/region': 'eu',
    'topology.kubernetes.io/zone': 'eu-b',
    'kubernetes.io/hostname': 'b',
    gpu: 'none',
  }),
];

describe('labels', () => {
  it('keeps what every node shares, minus the excluded pattern', () => {
    expect(commonLabels(nodes, /^gpu$/)).toEqual({ 'topology.kubernetes.io/region': 'eu' });
  });
});

describe('desiredNode', () => {
  const base = {
    nodeName: 'spillway-eu',
    hostClusterName: 'host',
    remoteName: 'eu',
    server: 'https://127.0.0.1:6443',
    kubeletAddress: '127.0.0.1',
    kubeletPort: 10250,
    taints: [{ key: 'virtual-kubelet.io/provider', value: 'spillway', effect: 'NoSchedule' }],
    configuredLabels: [{ team: 'a', type: 'overridden-by-spillway' }],
    excludeLabels: /^kubernetes\.io\/hostname$/,
    remoteNodes: nodes,
    capacity: computeCapacity({ nodes, pods: [] }),
    remoteVersion: 'v1.36.3',
    fallbackVersion: 'v1.35.0',
    bootId: 'boot',
  };

  it('builds labels, taints, status and annotations of a reachable remote', () => {
    const desired = desiredNode({ ...base, reachability: { state: 'reachable' } });
    expect(desired.labels).toMatchObject({
      type: 'virtual-kubelet',
      team: 'a',
      gpu: 'none',
      'topology.kubernetes.io/region': 'eu',
      'kubernetes.io/hostname': 'spillway-eu',
      'spillway.dev/cluster': 'eu',
    });
    expect(desired.status.allocatable).toEqual({ cpu: '4', memory: '8Gi', pods: '20' });
    expect(desired.status.addresses).toEqual([{ type: 'InternalIP', address: '127.0.0.1' }]);
    expect(desired.status.nodeInfo?.kubeletVersion).toMatch(/^v1\.36\.3-spillway\./);
    expect(desired.conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'RemoteClusterReady',
    });
    expect(
      isOwnedBy({ metadata: { labels: desired.labels, annotations: desired.annotations } }, 'host'),
    ).toBe(true);
    expect(
      isOwnedBy({ metadata: { labels: desired.labels, annotations: desired.annotations } }, 'other-host'),
    ).toBe(false);
  });

  it('says why the node is not Ready', () => {
    const unreachable = desiredNode({
      ...base,
      reachability: { state: 'unreachable', since: '2026-01-01T00:00:00.000Z', error: 'ECONNREFUSED' },
    });
    expect(unreachable.conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'RemoteClusterUnreachable',
      message:
        'remote cluster eu at https://127.0.0.1:6443 unreachable since 2026-01-01T00:00:00.000Z: ECONNREFUSED',
    });
    expect(unreachable.conditions.find((c) => c.type === 'MemoryPressure')?.status).toBe('Unknown');
    const noNodes = computeConditions({
      remoteName: 'eu',
      server: 's',
      reachability: { state: 'reachable' },
      allNodes: nodes,
      schedulableNodes: [],
    });
    expect(noNodes[0]).toMatchObject({ status: 'False', reason: 'NoSchedulableRemoteNodes' });
  });

  it('reports pressure only when every schedulable remote node is under it', () => {
    const some = computeConditions({
      remoteName: 'eu',
      server: 's',
      reachability: { state: 'reachable' },
      allNodes: nodes,
      schedulableNodes: [node('a', {}, { Ready: 'True', MemoryPressure: 'True' }), node('b', {})],
    });
    expect(some.find((c) => c.type === 'MemoryPressure')).toMatchObject({
      status: 'False',
      message: '1 of 2 schedulable remote nodes report memory pressure',
    });
    const all = computeConditions({
      remoteName: 'eu',
      server: 's',
      reachability: { state: 'reachable' },
      allNodes: nodes,
      schedulableNodes: [node('a', {}, { Ready: 'True', DiskPressure: 'True' })],
    });
    expect(all.find((c) => c.type === 'DiskPressure')).toMatchObject({
      status: 'True',
      reason: 'RemoteNodesUnderDiskPressure',
    });
  });
});

describe('conditions over time', () => {
  it('keeps the transition time while the status holds, and moves it when the status flips', () => {
    const ready = computeConditions({
      remoteName: 'eu',
      server: 's',
      reachability: { state: 'reachable' },
      allNodes: nodes,
      schedulableNodes: nodes,
    });
    const first = stampConditions(ready, undefined, 't1');
    const second = stampConditions(ready, first, 't2');
    expect(second[0]).toMatchObject({ lastTransitionTime: 't1', lastHeartbeatTime: 't2' });
    expect(conditionsEqual(first, ready)).toBe(true);
    const down = computeConditions({
      remoteName: 'eu',
      server: 's',
      reachability: { state: 'connecting' },
      allNodes: nodes,
      schedulableNodes: nodes,
    });
    expect(stampConditions(down, second, 't3')[0]?.lastTransitionTime).toBe('t3');
    expect(conditionsEqual(second, down)).toBe(false);
  });
});

describe('mergeTaints', () => {
  it("keeps others' taints, replaces ours, drops the ones we no longer want", () => {
    const current = [
      { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' },
      { key: 'virtual-kubelet.io/provider', value: 'spillway', effect: 'NoSchedule' },
      { key: 'old', effect: 'NoSchedule' },
    ];
    expect(
      mergeTaints(
        current,
        ['virtual-kubelet.io/provider:NoSchedule', 'old:NoSchedule'],
        [{ key: 'new', effect: 'NoSchedule' }],
      ),
    ).toEqual([
      { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' },
      { key: 'new', effect: 'NoSchedule' },
    ]);
  });
});

describe('kubeletVersion', () => {
  it.each([
    ['v1.36.3', /^v1\.36\.3-spillway\.\d+\.\d+\.\d+$/],
    ['v1.36.3+k3s1', /^v1\.36\.3-spillway\./],
    ['1.30.0', /^v1\.30\.0-spillway\./],
    ['garbage', /^v0\.0\.0-spillway\./],
  ])('%s', (version, expected) => {
    expect(kubeletVersion(version)).toMatch(expected);
  });
});
