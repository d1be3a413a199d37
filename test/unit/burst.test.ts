// Burst pods and the virtual node's admission: the webhook's JSON patch, the AdmissionReview answer,
// the fit of a pod on the remote's nodes, and the cap that prevents a create/refuse loop.
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parseQuantity, parseResourceList } from '../../src/kube/quantity.ts';
import type { RemoteNode, RemotePodUsage } from '../../src/node/capacity.ts';
import {
  capForFragmentation,
  describeRefusal,
  FragmentationGuard,
  fitRefusal,
  freeByNode,
  largestFree,
} from '../../src/node/fragmentation.ts';
import { admissionRefusal } from '../../src/pods/admission.ts';
import { type BurstOptions, burstPatch } from '../../src/webhook/mutation.ts';
import { admissionResponse } from '../../src/webhook/server.ts';

const options: BurstOptions = {
  virtualTaints: [{ key: 'virtual-kubelet.io/provider', value: 'spillway', effect: 'NoSchedule' }],
  preferLocalWeight: 100,
  remoteWeights: { cheap: 50 },
  notReadyTolerationSeconds: 60,
};

/** A pod as the API server hands it to a mutating webhook: DefaultTolerationSeconds has run. */
const admitted = (extra: Partial<V1Pod['spec']> = {}, metadata: V1Pod['metadata'] = {}): V1Pod => ({
  metadata: { generateName: 'web-', namespace: 'burst', ...metadata },
  spec: {
    containers: [{ name: 'main', image: 'nginx' }],
    tolerations: [
      {
        key: 'node.kubernetes.io/not-ready',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
      {
        key: 'node.kubernetes.io/unreachable',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 300,
      },
    ],
    ...extra,
  },
});

const valueAt = (patch: ReturnType<typeof burstPatch>, path: string) =>
  patch?.find((op) => op.path === path)?.value;

describe('the burst patch', () => {
  it('tolerates the virtual nodes, prefers real ones (then the weighted remote) and shortens eviction', () => {
    const patch = burstPatch(admitted(), options);
    expect(valueAt(patch, '/spec/tolerations')).toEqual([
      { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 60 },
      {
        key: 'node.kubernetes.io/unreachable',
        operator: 'Exists',
        effect: 'NoExecute',
        tolerationSeconds: 60,
      },
      { key: 'virtual-kubelet.io/provider', operator: 'Exists', effect: 'NoSchedule' },
    ]);
    expect(valueAt(patch, '/spec/affinity')).toEqual({
      nodeAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 100,
            preference: {
              matchExpressions: [{ key: 'type', operator: 'NotIn', values: ['virtual-kubelet'] }],
            },
          },
          {
            weight: 50,
            preference: {
              matchExpressions: [{ key: 'spillway.dev/cluster', operator: 'In', values: ['cheap'] }],
            },
          },
        ],
      },
    });
    expect(valueAt(patch, '/metadata/annotations')).toHaveProperty('spillway.dev/burst-mutated');
  });

  it('keeps what the pod already says: its own eviction times, tolerations and affinity', () => {
    const pod = admitted({
      tolerations: [
        {
          key: 'node.kubernetes.io/not-ready',
          operator: 'Exists',
          effect: 'NoExecute',
          tolerationSeconds: 5,
        },
        { operator: 'Exists' },
      ],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] }],
          },
        },
        podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] },
      },
    });
    const patch = burstPatch(pod, options);
    const tolerations = valueAt(patch, '/spec/tolerations') as { key?: string; tolerationSeconds?: number }[];
    expect(tolerations.find((t) => t.key === 'node.kubernetes.io/not-ready')?.tolerationSeconds).toBe(5);
    // "tolerate everything" already covers the virtual taint: not added again
    expect(tolerations.filter((t) => t.key === 'virtual-kubelet.io/provider')).toEqual([]);
    const affinity = valueAt(patch, '/spec/affinity') as NonNullable<V1Pod['spec']>['affinity'];
    expect(affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution).toEqual(
      pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution,
    );
    expect(affinity?.podAntiAffinity).toEqual({ preferredDuringSchedulingIgnoredDuringExecution: [] });
    // applied twice, it adds nothing new
    const again = burstPatch({ ...pod, spec: { ...pod.spec, containers: [], affinity } }, options);
    expect(
      (valueAt(again, '/spec/affinity') as typeof affinity)?.nodeAffinity
        ?.preferredDuringSchedulingIgnoredDuringExecution,
    ).toHaveLength(2);
  });

  it('leaves bound pods, DaemonSet pods and pods that opted out alone', () => {
    expect(burstPatch(admitted({ nodeName: 'node-1' }), options)).toBeUndefined();
    const daemon = admitted(
      {},
      {
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'd', uid: 'u', controller: true },
        ],
      },
    );
    expect(burstPatch(daemon, options)).toBeUndefined();
    expect(
      burstPatch(admitted({}, { annotations: { 'spillway.dev/burst': 'disabled' } }), options),
    ).toBeUndefined();
  });
});

describe('the AdmissionReview answer', () => {
  it('allows every pod, with a base64 JSON patch for a new one', () => {
    const answer = admissionResponse(
      { request: { uid: 'u-1', operation: 'CREATE', object: admitted() } },
      options,
    );
    const response = answer.response as { uid: string; allowed: boolean; patchType: string; patch: string };
    expect(response).toMatchObject({ uid: 'u-1', allowed: true, patchType: 'JSONPatch' });
    expect(JSON.parse(Buffer.from(response.patch, 'base64').toString())).toEqual(
      burstPatch(admitted(), options),
    );
  });

  it('allows without a patch what it does not mutate, and refuses a review without a uid', () => {
    const update = admissionResponse(
      { request: { uid: 'u-2', operation: 'UPDATE', object: admitted() } },
      options,
    );
    expect(update.response).toEqual({ uid: 'u-2', allowed: true });
    expect(() => admissionResponse({ request: {} }, options)).toThrow(/uid/);
  });
});

const node = (name: string, cpu: string, memory = '16Gi', extra: Partial<RemoteNode> = {}): RemoteNode => ({
  name,
  labels: {},
  allocatable: parseResourceList({ cpu, memory, pods: '110' }),
  unschedulable: false,
  taints: [],
  conditions: { Ready: 'True' },
  ...extra,
});
const pod = (nodeName: string | undefined, cpu: string, ownDelegate = false): RemotePodUsage => ({
  nodeName,
  requests: parseResourceList({ cpu, pods: '1' }),
  ownDelegate,
});

describe('fitting a pod on one remote node', () => {
  const nodes = [
    node('a', '4'),
    node('b', '4'),
    node('c', '4'),
    node('cordoned', '8', '16Gi', { unschedulable: true }),
  ];
  const pods = [pod('a', '1'), pod('b', '1', true), pod('c', '1'), pod(undefined, '2')];

  it('knows what each schedulable node has free, and the largest slot', () => {
    const free = freeByNode(nodes, pods);
    expect([...free.keys()]).toEqual(['a', 'b', 'c']);
    expect(free.get('a')?.get('cpu')).toBe(parseQuantity('3'));
    expect(largestFree(free).get('cpu')).toBe(parseQuantity('3'));
  });

  it('refuses what no single node can take, naming the resource, though the sum would fit', () => {
    const free = freeByNode(nodes, pods);
    expect(fitRefusal(parseResourceList({ cpu: '3', pods: '1' }), free)).toBeUndefined();
    const refusal = fitRefusal(parseResourceList({ cpu: '4', pods: '1' }), free);
    expect(refusal).toEqual({
      resource: 'cpu',
      requested: parseQuantity('4'),
      largestFree: parseQuantity('3'),
    });
    expect(describeRefusal(refusal as NonNullable<typeof refusal>, 'eu')).toBe(
      'Pod was rejected: no node of remote cluster eu has enough cpu (requested 4, at most 3 free on one node)',
    );
    expect(fitRefusal(parseResourceList({ 'nvidia.com/gpu': '1' }), free)?.resource).toBe('nvidia.com/gpu');
  });

  it('refuses resources that each fit somewhere but never together on one node', () => {
    const free = freeByNode([node('cpu-rich', '8', '1Gi'), node('memory-rich', '1', '64Gi')], []);
    expect(fitRefusal(parseResourceList({ cpu: '4', memory: '8Gi' }), free)?.resource).toBe('memory');
  });

  it('kubelet-like reasons: OutOfcpu, and DaemonSet pods refused unless allowed', () => {
    const fit = () => ({ resource: 'cpu', requested: parseQuantity('4'), largestFree: parseQuantity('3') });
    const base = { remoteName: 'eu', nodeName: 'spillway-eu', allowDaemonSets: false };
    expect(admissionRefusal(admitted(), { ...base, fit })?.reason).toBe('OutOfcpu');
    expect(admissionRefusal(admitted(), { ...base, fit: () => undefined })).toBeUndefined();
    const daemon = admitted(
      {},
      {
        ownerReferences: [
          { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'd', uid: 'u', controller: true },
        ],
      },
    );
    expect(admissionRefusal(daemon, { ...base, fit: () => undefined })?.reason).toBe('DaemonSetPodRefused');
    expect(
      admissionRefusal(daemon, { ...base, allowDaemonSets: true, fit: () => undefined }),
    ).toBeUndefined();
  });
});

describe('the fragmentation cap', () => {
  it('caps a refused resource at own use + the largest slot, until a slot as large appears', () => {
    const allocatable = parseResourceList({ cpu: '9', memory: '48Gi', pods: '330' });
    const own = parseResourceList({ cpu: '1' });
    const refused = new Map([['cpu', parseQuantity('4')]]);
    const capped = capForFragmentation(allocatable, own, parseResourceList({ cpu: '3' }), refused);
    expect(capped.allocatable.get('cpu')).toBe(parseQuantity('4'));
    expect(capped.allocatable.get('memory')).toBe(parseQuantity('48Gi'));
    expect(capped.resolved).toEqual([]);
    const freed = capForFragmentation(allocatable, own, parseResourceList({ cpu: '4' }), refused);
    expect(freed.allocatable.get('cpu')).toBe(parseQuantity('9'));
    expect(freed.resolved).toEqual(['cpu']);
  });

  it('refuses nothing before the remote has been listed', () => {
    const guard = new FragmentationGuard(
      { synced: false, remoteNodes: () => [], podUsage: () => [] },
      () => {},
    );
    expect(guard.check(parseResourceList({ cpu: '1' }))).toBeUndefined();
  });

  it('refuses nothing while no remote node is schedulable (an unavailable remote is not a full one)', () => {
    const guard = new FragmentationGuard(
      { synced: true, remoteNodes: () => [], podUsage: () => [] },
      () => {},
    );
    expect(guard.check(parseResourceList({ cpu: '1', pods: '1' }))).toBeUndefined();
  });

  it('is switched on by a refusal and off when the remote frees a slot', () => {
    let pods = [pod('a', '1'), pod('b', '1', true)];
    let refusals = 0;
    const guard = new FragmentationGuard(
      { synced: true, remoteNodes: () => [node('a', '4'), node('b', '4')], podUsage: () => pods },
      () => refusals++,
    );
    const allocatable = parseResourceList({ cpu: '6' });
    expect(guard.cap(allocatable, new Map()).get('cpu')).toBe(parseQuantity('6'));
    expect(guard.check(parseResourceList({ cpu: '4' }))?.resource).toBe('cpu');
    expect(refusals).toBe(1);
    expect(guard.cap(allocatable, parseResourceList({ cpu: '1' })).get('cpu')).toBe(parseQuantity('4'));
    pods = [pod('b', '1', true)];
    expect(guard.cap(allocatable, parseResourceList({ cpu: '1' })).get('cpu')).toBe(parseQuantity('6'));
    expect(guard.cappedResources).toEqual([]);
  });
});
