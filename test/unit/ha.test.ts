import type { V1Lease } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { assignRemotes } from '../../src/ha/assignment.ts';
import { Fence, FencedError, fencedClient } from '../../src/ha/fence.ts';
import { staleLeases } from '../../src/ha/stale.ts';
import type { ClusterClient } from '../../src/kube/client.ts';
import { isTerminal } from '../../src/kube/errors.ts';

const names = (n: number, prefix = 'r') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

function loads(assignment: Map<string, string>): number[] {
  const counts = new Map<string, number>();
  for (const owner of assignment.values()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return [...counts.values()].sort();
}

describe('assignRemotes', () => {
  it.each([
    [4, 3],
    [4, 1],
    [1, 3],
    [10, 4],
    [7, 7],
    [100, 6],
  ])('gives each of %i remotes to one of %i replicas, loads differing by at most one', (r, m) => {
    const assignment = assignRemotes(names(r), names(m, 'm'));
    expect(assignment.size).toBe(r);
    const counts = loads(assignment);
    expect(Math.max(...counts) - Math.min(...counts, Math.max(...counts))).toBeLessThanOrEqual(1);
    if (r >= m) expect(counts.length).toBe(m);
  });

  it('is the same whatever order replicas see remotes and members in', () => {
    const a = assignRemotes(['x', 'y', 'z', 'w'], ['m1', 'm2', 'm3']);
    const b = assignRemotes(['w', 'z', 'y', 'x'], ['m3', 'm1', 'm2']);
    expect(b).toEqual(a);
  });

  it('keeps remotes with their live holders while that stays balanced', () => {
    const holders = new Map([
      ['a', 'm1'],
      ['b', 'm1'],
      ['c', 'm2'],
      ['d', 'm3'],
    ]);
    expect(assignRemotes(['a', 'b', 'c', 'd'], ['m1', 'm2', 'm3'], holders)).toEqual(holders);
  });

  it('moves one remote from a replica holding too many to one holding none', () => {
    const holders = new Map([
      ['a', 'm1'],
      ['b', 'm1'],
      ['c', 'm2'],
      ['d', 'm2'],
    ]);
    const assignment = assignRemotes(['a', 'b', 'c', 'd'], ['m1', 'm2', 'm3'], holders);
    expect(loads(assignment)).toEqual([1, 1, 2]);
    const kept = ['a', 'b', 'c', 'd'].filter((r) => assignment.get(r) === holders.get(r));
    expect(kept.length).toBe(3);
  });

  it("shares a dead replica's remotes among the living, leaving the others where they are", () => {
    const holders = new Map([
      ['a', 'dead'],
      ['b', 'dead'],
      ['c', 'm2'],
      ['d', 'm3'],
    ]);
    const assignment = assignRemotes(['a', 'b', 'c', 'd'], ['m2', 'm3'], holders);
    expect(assignment.get('c')).toBe('m2');
    expect(assignment.get('d')).toBe('m3');
    expect(loads(assignment)).toEqual([2, 2]);
  });

  it('assigns nothing without members', () => {
    expect(assignRemotes(['a'], []).size).toBe(0);
  });
});

describe('Fence', () => {
  it('allows writes until the renew deadline, and longer after each renewal', () => {
    const fence = new Fence('eu', 1000, 0);
    expect(fence.valid(999)).toBe(true);
    expect(fence.valid(1000)).toBe(false);
    fence.extend(500, 1000);
    expect(fence.valid(1400)).toBe(true);
    // A renewal that started earlier than what already holds does not shorten it.
    fence.extend(100, 1000);
    expect(fence.valid(1400)).toBe(true);
  });

  it('refuses for good once lost, with a terminal error and an aborted signal', () => {
    const fence = new Fence('eu', 60_000);
    fence.lose('taken over');
    expect(fence.signal.aborted).toBe(true);
    expect(() => fence.check()).toThrow(FencedError);
    let error: unknown;
    try {
      fence.check();
    } catch (e) {
      error = e;
    }
    expect(isTerminal(error)).toBe(true);
    fence.extend(performance.now(), 60_000);
    expect(fence.valid()).toBe(false);
  });

  it('turns an expired proof into a loss on the next check', () => {
    const fence = new Fence('eu', 1, performance.now() - 10);
    expect(() => fence.check()).toThrow(/renew deadline/);
    expect(fence.lost).toBe(true);
  });
});

describe('fencedClient', () => {
  function recordingClient() {
    const calls: { method: string; path: string; signal?: AbortSignal }[] = [];
    const client = {
      name: 'eu',
      request(method: string, path: string, options: { signal?: AbortSignal } = {}) {
        calls.push({ method, path, signal: options.signal });
        return Promise.resolve('answer');
      },
      get(path: string) {
        return this.request('GET', path);
      },
      patch(path: string) {
        return this.request('PATCH', path);
      },
    };
    return { calls, client: client as unknown as ClusterClient };
  }

  it('sends requests, its convenience methods included, while the fence holds, with its signal', async () => {
    const { calls, client } = recordingClient();
    const fence = new Fence('eu', 60_000);
    const fenced = fencedClient(client, fence);
    expect(fenced.name).toBe('eu');
    await expect(fenced.patch('/api/v1/nodes/n', {}, 'merge')).resolves.toBe('answer');
    await expect(fenced.get('/api/v1/pods')).resolves.toBe('answer');
    expect(calls.map((c) => `${c.method} ${c.path}`)).toEqual(['PATCH /api/v1/nodes/n', 'GET /api/v1/pods']);
    fence.lose('taken over');
    // In-flight requests see the abort through the signal they were given.
    expect(calls[0]?.signal?.aborted).toBe(true);
  });

  it('refuses to send anything once the fence is lost', async () => {
    const { calls, client } = recordingClient();
    const fence = new Fence('eu', 60_000);
    const fenced = fencedClient(client, fence);
    fence.lose('renewal failed');
    await expect(fenced.patch('/api/v1/nodes/n', {}, 'merge')).rejects.toBeInstanceOf(FencedError);
    expect(calls).toEqual([]);
  });
});

describe('staleLeases', () => {
  const lease = (name: string, role: string, annotations: Record<string, string> = {}): V1Lease => ({
    metadata: { name, labels: { 'spillway.dev/ha-lease': role }, annotations },
  });
  const leases = [
    lease('spillway-remote-gone', 'remote', {
      'spillway.dev/remote': 'gone',
      'spillway.dev/node-name': 'spillway-gone',
    }),
    lease('spillway-remote-known', 'remote', { 'spillway.dev/remote': 'known' }),
    lease('spillway-remote-held', 'remote', { 'spillway.dev/remote': 'held' }),
    lease('spillway-remote-recent', 'remote', { 'spillway.dev/remote': 'recent' }),
    lease('spillway-replica-dead', 'replica'),
    lease('spillway-replica-late', 'replica'),
    lease('spillway-leader', 'leader'),
  ];
  const free = new Map<string, number | undefined>([
    ['spillway-remote-gone', 25_000],
    ['spillway-remote-known', 1e9],
    ['spillway-remote-held', undefined],
    ['spillway-remote-recent', 5_000],
    ['spillway-replica-dead', 200_000],
    ['spillway-replica-late', 50_000],
    ['spillway-leader', 1e9],
  ]);

  it('collects only free Leases of remotes nobody knows, and long-dead replicas', () => {
    const stale = staleLeases(leases, (name) => free.get(name), new Set(['known']), 10_000);
    expect(stale.remotes).toEqual([{ lease: 'spillway-remote-gone', remote: 'gone', node: 'spillway-gone' }]);
    expect(stale.replicas).toEqual(['spillway-replica-dead']);
  });
});
