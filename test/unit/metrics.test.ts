// The pure parts of resource metrics: the Prometheus text format, the CPU rate integrator, the
// node's never-decreasing CPU counter and renaming remote samples to host pods.
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { accumulateCpu, toHostUsage } from '../../src/kubelet/metrics.ts';
import { type ContainerUsage, CpuIntegrator, parseWindowSeconds } from '../../src/kubelet/metrics-sources.ts';
import { formatPrometheusText, parsePrometheusText, type Sample } from '../../src/kubelet/prometheus.ts';

describe('the Prometheus text format', () => {
  it('parses names, escaped labels, special values and timestamps, and skips comments and junk', () => {
    const text = [
      '# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time',
      '# TYPE container_cpu_usage_seconds_total counter',
      'container_cpu_usage_seconds_total{container="main",namespace="a",pod="p\\"q\\\\r\\n"} 1.5 1700000000000',
      'node_memory_working_set_bytes 1.048576e+06',
      'up +Inf',
      'down NaN',
      'broken{ 1',
      'words not-a-number',
      '',
    ].join('\n');
    expect(parsePrometheusText(text)).toEqual([
      {
        name: 'container_cpu_usage_seconds_total',
        labels: { container: 'main', namespace: 'a', pod: 'p"q\\r\n' },
        value: 1.5,
        timestampMs: 1700000000000,
      },
      { name: 'node_memory_working_set_bytes', labels: {}, value: 1048576 },
      { name: 'up', labels: {}, value: Number.POSITIVE_INFINITY },
      { name: 'down', labels: {}, value: Number.NaN },
    ]);
  });

  it('writes what it parses back unchanged', () => {
    const samples: Sample[] = [
      { name: 'x_total', labels: { pod: 'a"b\\c\nd' }, value: 2.25, timestampMs: 1234 },
      { name: 'x_total', labels: {}, value: 0 },
    ];
    const text = formatPrometheusText([{ name: 'x_total', help: 'help text', type: 'counter', samples }]);
    expect(text).toContain('# TYPE x_total counter\n');
    expect(parsePrometheusText(text)).toEqual(samples);
  });
});

describe('metrics.k8s.io windows', () => {
  it.each([
    ['15s', 15],
    ['10.5s', 10.5],
    ['1m30s', 90],
    ['1h', 3600],
    ['250ms', 0.25],
    ['', 0],
  ])('%j is %d seconds', (window, seconds) => {
    expect(parseWindowSeconds(window)).toBeCloseTo(seconds, 9);
  });
});

describe('the CPU integrator', () => {
  it('turns rates into a counter: the first window, then rate × elapsed time', () => {
    const cpu = new CpuIntegrator();
    expect(cpu.observe('uid/main', 0.25, 10_000, 10)).toBeCloseTo(2.5);
    expect(cpu.observe('uid/main', 0.5, 20_000, 10)).toBeCloseTo(7.5);
    // The same observation again (a cached PodMetrics) adds nothing, nor does an older one.
    expect(cpu.observe('uid/main', 0.5, 20_000, 10)).toBeCloseTo(7.5);
    expect(cpu.observe('uid/main', 9, 15_000, 10)).toBeCloseTo(7.5);
  });

  it('keeps containers apart and forgets the ones that are gone', () => {
    const cpu = new CpuIntegrator();
    cpu.observe('a/main', 1, 1_000, 1);
    cpu.observe('b/main', 2, 1_000, 1);
    cpu.retain(new Set(['b/main']));
    expect(cpu.observe('a/main', 1, 2_000, 1)).toBeCloseTo(1);
    expect(cpu.observe('b/main', 2, 2_000, 1)).toBeCloseTo(4);
  });
});

describe('the node CPU counter', () => {
  const usage = (podUid: string, cpuSeconds: number): ContainerUsage => ({
    namespace: 'ns',
    pod: podUid,
    podUid,
    container: 'main',
    cpuSeconds,
    timestampMs: 0,
  });

  it('adds each container’s growth and never goes back when pods leave or restart', () => {
    let state = { total: 0, last: new Map<string, number>() };
    state = accumulateCpu(state, [usage('a', 5), usage('b', 1)]);
    expect(state.total).toBe(6);
    state = accumulateCpu(state, [usage('a', 7), usage('b', 4)]);
    expect(state.total).toBe(11);
    // b left: its time stays counted
    state = accumulateCpu(state, [usage('a', 8)]);
    expect(state.total).toBe(12);
    // a restarted (its counter went back): all of its new time is growth
    state = accumulateCpu(state, [usage('a', 0.5)]);
    expect(state.total).toBe(12.5);
  });
});

describe('renaming remote usage to the host pod', () => {
  const delegate: V1Pod = {
    metadata: {
      name: 'web-1',
      namespace: 'host-web',
      uid: 'delegate-uid',
      labels: { 'spillway.dev/host-pod-uid': 'host-uid' },
      annotations: { 'spillway.dev/host-namespace': 'web', 'spillway.dev/host-name': 'web-1' },
    },
    status: {
      containerStatuses: [
        {
          name: 'main',
          image: 'x',
          imageID: '',
          ready: true,
          restartCount: 0,
          state: { running: { startedAt: new Date('2026-01-02T03:04:05Z') } },
        },
      ],
    },
  };

  it('names the host pod, keeps the values, and takes the start time from the delegate’s status', () => {
    expect(
      toHostUsage({ delegate, container: 'main', cpuSeconds: 3, memoryBytes: 1024, startTime: 1 }, 99),
    ).toEqual({
      namespace: 'web',
      pod: 'web-1',
      podUid: 'host-uid',
      container: 'main',
      cpuSeconds: 3,
      memoryBytes: 1024,
      startTime: Date.parse('2026-01-02T03:04:05Z') / 1000,
      timestampMs: 99,
    });
  });

  it('falls back to the sample’s start time for a container without a running state', () => {
    expect(toHostUsage({ delegate, container: 'sidecar', startTime: 42, timestampMs: 7 }, 99)).toMatchObject({
      container: 'sidecar',
      startTime: 42,
      timestampMs: 7,
    });
  });
});
