// A pod being resized in place counts as the scheduler counts it: the larger of what its containers
// ask, were allocated and have; only the latter two when the kubelet found the resize infeasible.
import { describe, expect, it } from 'vitest';
import { formatResourceList } from '../../src/kube/quantity.ts';
import { podRequests } from '../../src/node/capacity.ts';

const spec = (cpu: string) => ({ containers: [{ name: 'main', resources: { requests: { cpu } } }] });
const status = (allocated: string, actual: string, reason?: string) => ({
  conditions: reason ? [{ type: 'PodResizePending', reason }] : [],
  containerStatuses: [
    { name: 'main', allocatedResources: { cpu: allocated }, resources: { requests: { cpu: actual } } },
  ],
});
const cpuOf = (s: ReturnType<typeof spec>, st?: ReturnType<typeof status>) =>
  formatResourceList(podRequests(s, st)).cpu;

describe('requests of a pod being resized', () => {
  it('without a status: the spec', () => {
    expect(cpuOf(spec('500m'))).toBe('500m');
  });

  it('growing: the new request counts at once', () => {
    expect(cpuOf(spec('2'), status('500m', '500m'))).toBe('2');
  });

  it('shrinking: what it still has counts until the kubelet has applied it', () => {
    expect(cpuOf(spec('200m'), status('500m', '500m'))).toBe('500m');
    expect(cpuOf(spec('200m'), status('200m', '200m'))).toBe('200m');
  });

  it('infeasible: what it has, not what it asks', () => {
    expect(cpuOf(spec('64'), status('500m', '500m', 'Infeasible'))).toBe('500m');
    expect(cpuOf(spec('64'), status('500m', '500m', 'Deferred'))).toBe('64');
  });
});
