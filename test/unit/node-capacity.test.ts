import { describe, expect, it } from 'vitest';
import { formatResourceList, parseResourceList } from '../../src/kube/quantity.ts';
import {
  computeCapacity,
  isSchedulable,
  type OwnedPodUsage,
  ownDelegatesUse,
  podRequests,
  type RemoteNode,
  type RemotePodUsage,
  UsageByNode,
} from '../../src/node/capacity.ts';
import { freeByNode } from '../../src/node/fragmentation.ts';

function node(name: string, overrides: Partial<RemoteNode> = {}): RemoteNode {
  return {
    name,
    labels: {},
    allocatable: parseResourceList({ cpu: '4', memory: '16Gi', pods: '110' }),
    unschedulable: false,
    taints: [],
    conditions: { Ready: 'True' },
    ...overrides,
  };
}

describe('isSchedulable', () => {
  it.each([
    ['a Ready node', node('a'), true],
    ['a NotReady node', node('a', { conditions: { Ready: 'False' } }), false],
    ['a cordoned node', node('a', { unschedulable: true }), false],
    [
      'a control-plane node',
      node('a', { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] }),
      false,
    ],
    [
      'an unreachable node',
      node('a', { taints: [{ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' }] }),
      false,
    ],
    [
      'a GPU node with a custom taint pods may tolerate',
      node('a', { taints: [{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }] }),
      true,
    ],
    ['a virtual node of another Spillway', node('a', { labels: { type: 'virtual-kubelet' } }), false],
  ])('%s: %s', (_what, candidate, expected) => {
    expect(isSchedulable(candidate)).toBe(expected);
  });
});

describe('podRequests', () => {
  const requests = (cpu: string, memory?: string) => ({
    resources: { requests: { cpu, ...(memory ? { memory } : {}) } },
  });

  it.each([
    ['no containers', {}, { pods: '1' }],
    [
      'app containers are summed',
      { containers: [requests('100m', '64Mi'), requests('200m', '64Mi')] },
      { cpu: '300m', memory: '128Mi', pods: '1' },
    ],
    [
      'a larger init container wins',
      { containers: [requests('100m')], initContainers: [requests('2')] },
      { cpu: '2', pods: '1' },
    ],
    [
      'sidecars run alongside app containers',
      { containers: [requests('500m')], initContainers: [{ ...requests('250m'), restartPolicy: 'Always' }] },
      { cpu: '750m', pods: '1' },
    ],
    [
      'an init container after a sidecar runs next to it',
      {
        containers: [requests('100m')],
        initContainers: [{ ...requests('1'), restartPolicy: 'Always' }, requests('2')],
      },
      { cpu: '3', pods: '1' },
    ],
    [
      'overhead is added',
      { containers: [requests('1')], overhead: { cpu: '250m' } },
      { cpu: '1250m', pods: '1' },
    ],
    [
      'pod-level requests win for what they name',
      { containers: [requests('1', '1Gi')], resources: { requests: { cpu: '3' } } },
      { cpu: '3', memory: '1Gi', pods: '1' },
    ],
  ])('%s', (_what, spec, expected) => {
    expect(formatResourceList(podRequests(spec))).toEqual(expected);
  });
});

describe('computeCapacity', () => {
  const nodes = [node('a'), node('b'), node('c', { unschedulable: true })];
  const pod = (nodeName: string, cpu: string, ownDelegate = false) => ({
    nodeName,
    ownDelegate,
    requests: parseResourceList({ cpu, memory: '1Gi', pods: '1' }),
  });

  it('sums the schedulable nodes and subtracts only other tenants there', () => {
    const capacity = computeCapacity({
      nodes,
      pods: [pod('a', '1'), pod('b', '500m', true), pod('c', '2'), { ...pod('a', '1'), nodeName: undefined }],
    });
    expect(formatResourceList(capacity.allocatable)).toEqual({ cpu: '7', memory: '31Gi', pods: '219' });
    expect(formatResourceList(capacity.total)).toEqual({ cpu: '8', memory: '32Gi', pods: '220' });
    expect(capacity.schedulableNodes).toBe(2);
  });

  it('never goes below zero when other tenants overcommit', () => {
    const capacity = computeCapacity({ nodes: [node('a')], pods: [pod('a', '10')] });
    expect(formatResourceList(capacity.allocatable).cpu).toBe('0');
  });

  it('caps by a percentage of the total and by absolute quantities, keeping pods whole', () => {
    const capacity = computeCapacity({ nodes, pods: [], share: { percent: 33, max: { memory: '10Gi' } } });
    expect(formatResourceList(capacity.allocatable)).toEqual({ cpu: '2640m', memory: '10Gi', pods: '72' });
  });

  it('advertises zero cpu, memory and pods when no node is schedulable', () => {
    expect(
      formatResourceList(
        computeCapacity({ nodes: [node('a', { unschedulable: true })], pods: [] }).allocatable,
      ),
    ).toEqual({
      cpu: '0',
      memory: '0',
      pods: '0',
    });
  });

  it('includes extended resources of schedulable nodes only', () => {
    const gpu = node('gpu', {
      allocatable: parseResourceList({ cpu: '8', memory: '32Gi', pods: '110', 'nvidia.com/gpu': '4' }),
    });
    const cordonedGpu = { ...gpu, name: 'gpu2', unschedulable: true };
    expect(
      formatResourceList(computeCapacity({ nodes: [gpu, cordonedGpu], pods: [] }).allocatable)[
        'nvidia.com/gpu'
      ],
    ).toBe('4');
  });
});

describe('UsageByNode (requests summed per node and owner as pods come and go)', () => {
  it('gives each virtual node the same capacity, own use and free slots as the pods themselves', () => {
    let seed = 11;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const nodes = [node('a'), node('b'), node('c', { unschedulable: true })];
    const owners = ['vn-1', 'vn-2', undefined];
    const usage = new UsageByNode();
    const live = new Map<number, OwnedPodUsage>();
    for (let step = 0; step < 2000; step++) {
      const id = random(300);
      const previous = live.get(id);
      if (previous) {
        usage.remove(previous);
        live.delete(id);
      }
      if (random(3) > 0) {
        const pod: OwnedPodUsage = {
          nodeName: random(5) === 0 ? undefined : (['a', 'b', 'c'][random(3)] as string),
          requests: podRequests({
            containers: [{ resources: { requests: { cpu: `${random(500)}m`, memory: `${random(64)}Mi` } } }],
          }),
          delegateOf: owners[random(3)],
        };
        usage.add(pod);
        live.set(id, pod);
      }
    }
    // 'vn-3' has no delegates at all: everything is another tenant's to it.
    for (const virtualNode of ['vn-1', 'vn-2', 'vn-3']) {
      const pods: RemotePodUsage[] = [...live.values()].map((p) => ({
        nodeName: p.nodeName,
        requests: p.requests,
        ownDelegate: p.delegateOf === virtualNode,
      }));
      const summed = usage.list(virtualNode);
      expect(summed.length).toBeLessThanOrEqual(2 * nodes.length);
      expect(formatResourceList(computeCapacity({ nodes, pods: summed }).allocatable)).toEqual(
        formatResourceList(computeCapacity({ nodes, pods }).allocatable),
      );
      // A sum of zero is left out of the running sums; summed pods keep it (0Mi requests): same use.
      const nonZero = (list: Map<string, bigint>) => new Map([...list].filter(([, v]) => v !== 0n));
      expect(formatResourceList(ownDelegatesUse(nodes, summed))).toEqual(
        formatResourceList(nonZero(ownDelegatesUse(nodes, pods))),
      );
      const free = (list: RemotePodUsage[]) =>
        Object.fromEntries([...freeByNode(nodes, list)].map(([name, l]) => [name, formatResourceList(l)]));
      expect(free(summed)).toEqual(free(pods));
    }
    // Every pod removed: nothing is left behind for anyone.
    for (const pod of live.values()) usage.remove(pod);
    expect(usage.list('vn-1')).toEqual([]);
  });
});
