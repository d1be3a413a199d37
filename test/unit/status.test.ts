import type { V1Lease, V1Node, V1Pod, V1Secret } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/status/format.ts';
import { buildStatus } from '../../src/status/model.ts';

const now = Date.parse('2026-12-01T12:00:00Z');
const iso = (offsetSeconds: number) => new Date(now + offsetSeconds * 1000).toISOString();

function node(name: string, remote: string, ready: boolean, port = 10250): V1Node {
  return {
    metadata: { name, labels: { 'spillway.dev/cluster': remote } },
    status: {
      capacity: { cpu: '12', memory: '48Gi', pods: '330' },
      allocatable: { cpu: '10', memory: '40Gi', pods: '300' },
      addresses: [{ type: 'InternalIP', address: '10.1.2.3' }],
      daemonEndpoints: { kubeletEndpoint: { Port: port } },
      conditions: [
        ready
          ? { type: 'Ready', status: 'True', reason: 'RemoteClusterReady', message: 'ok' }
          : {
              type: 'Ready',
              status: 'False',
              reason: 'RemoteUnreachable',
              message: 'remote cluster west unreachable: connect ECONNREFUSED',
              lastTransitionTime: iso(-30) as never,
            },
      ],
    },
  };
}

function pod(name: string, phase: string, cpu = '500m'): V1Pod {
  return {
    metadata: { name, namespace: 'apps' },
    spec: { containers: [{ name: 'c', resources: { requests: { cpu, memory: '1Gi' } } }] },
    status: { phase },
  };
}

function lease(name: string, role: string, holder: string, renewedAgo: number, annotations = {}): V1Lease {
  return {
    metadata: { name, labels: { 'spillway.dev/ha-lease': role }, annotations },
    spec: { holderIdentity: holder, leaseDurationSeconds: 10, renewTime: iso(-renewedAgo) as never },
  };
}

const secret: V1Secret = {
  metadata: {
    name: 'west',
    namespace: 'spillway-system',
    labels: { 'spillway.dev/remote-cluster': 'west' },
    annotations: { 'spillway.dev/credential-expires': iso(3 * 86400) },
  },
};

const report = buildStatus({
  hostClusterName: 'host',
  namespace: 'spillway-system',
  configured: [{ name: 'east', nodeName: 'spillway-east' }],
  nodes: [node('spillway-east', 'east', true, 10251), node('spillway-west', 'west', false)],
  secrets: [secret],
  leases: [
    lease('spillway-remote-east', 'remote', 'r1_a', 1, { 'spillway.dev/remote': 'east' }),
    lease('spillway-remote-west', 'remote', 'r2_b', 60, { 'spillway.dev/remote': 'west' }),
    lease('spillway-replica-1', 'replica', 'r1_a', 1, { 'spillway.dev/kubelet-endpoint': '10.1.2.3:10251' }),
    lease('spillway-replica-2', 'replica', 'r2_b', 60, { 'spillway.dev/kubelet-endpoint': '10.1.2.4:10250' }),
    lease('spillway-leader', 'leader', 'r1_a', 1),
  ],
  podsByNode: new Map([
    [
      'spillway-east',
      [pod('a', 'Running'), pod('b', 'Running'), pod('c', 'Pending'), pod('d', 'Succeeded', '4')],
    ],
  ]),
  events: [
    {
      metadata: { name: 'e1' },
      involvedObject: { kind: 'Pod', name: 'c', namespace: 'apps' },
      reason: 'DelegateForbidden',
      message: 'exceeded quota',
      lastTimestamp: iso(-5) as never,
    },
  ],
  now,
});

describe('spillway status', () => {
  it('has one entry per remote with its node, readiness, use, pods by phase, last error and owner', () => {
    expect(report.remotes.map((r) => [r.name, r.node, r.ready])).toEqual([
      ['east', 'spillway-east', true],
      ['west', 'spillway-west', false],
    ]);
    const [east, west] = report.remotes;
    expect(east?.pods).toEqual({ Pending: 1, Running: 2, Succeeded: 1, Failed: 0, Unknown: 0 });
    // Finished pods use nothing.
    expect(east?.requested).toEqual({ cpu: '1500m', memory: '3Gi', pods: '3' });
    expect(east?.allocatable).toEqual({ cpu: '10', memory: '40Gi', pods: '300' });
    expect(east?.lastError).toEqual({
      reason: 'DelegateForbidden',
      message: 'exceeded quota',
      time: iso(-5),
    });
    expect(east?.owner).toEqual({ replica: 'r1_a', kubeletEndpoint: '10.1.2.3:10251', live: true });
    expect(east?.kubeletEndpoint).toBe('10.1.2.3:10251');
    expect(east?.source).toBe('configuration');
    expect(west?.reason).toBe('RemoteUnreachable');
    expect(west?.lastError?.message).toContain('ECONNREFUSED');
    expect(west?.owner?.live).toBe(false);
    expect(west?.source).toBe('Secret spillway-system/west');
    expect(west?.credentialExpires).toBe(iso(3 * 86400));
  });

  it('lists the replicas, which are alive and which leads', () => {
    expect(report.replicas).toEqual([
      { identity: 'r1_a', kubeletEndpoint: '10.1.2.3:10251', live: true, leader: true, remotes: 1 },
      { identity: 'r2_b', kubeletEndpoint: '10.1.2.4:10250', live: false, leader: false, remotes: 0 },
    ]);
  });

  it('reads as a table for a person, with errors and expiring credentials spelled out', () => {
    const text = formatStatus(report, now);
    expect(text).toContain('2 remote cluster(s), 1 live replica(s), leader r1_a');
    expect(text).toMatch(
      /east\s+spillway-east\s+True\s+1500m\/10\s+3Gi\/40Gi\s+3\/300\s+1\s+2\s+1\s+0\s+0\s+r1_a/,
    );
    expect(text).toMatch(/west\s+spillway-west\s+False \(RemoteUnreachable\)/);
    expect(text).toContain('r2_b (expired)');
    expect(text).toContain('east: DelegateForbidden: exceeded quota (5s ago)');
    expect(text).toContain('west: expires');
    expect(text).toContain('(in 3d)');
  });

  it('says how to add a remote when there is none', () => {
    const empty = buildStatus({
      hostClusterName: 'host',
      namespace: 'spillway-system',
      configured: [],
      nodes: [],
      secrets: [],
      leases: [],
      podsByNode: new Map(),
      events: [],
      now,
    });
    expect(empty.remotes).toEqual([]);
    expect(formatStatus(empty, now)).toContain('spillway join NAME --kubeconfig');
  });
});
