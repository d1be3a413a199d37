// Spillway's own metrics, scraped from /metrics while a small burst of pods runs: every family an
// operator alerts on is there, and the values move with the work. The shipped alerts and dashboard
// read only metrics Spillway really exports.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { parsePrometheusText, type Sample } from '../../src/kubelet/prometheus.ts';
import { clusters } from '../cluster/fixture.ts';
import { freePort } from '../cluster/ports.ts';
import { kube, uniqueSuffix } from '../support/kube.ts';
import { shippedExpressions, spillwayFamilies } from '../support/monitoring.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { pinnedSpec, tearDownVirtualNode } from '../support/workloads.ts';

const suffix = uniqueSuffix();
const remoteName = `metrics-${suffix}`;
const nodeName = `spillway-${remoteName}`;
const namespace = `metrics-${suffix}`;
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
let spillway: Spillway;
let port: number;

async function scrape(): Promise<Sample[]> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  return parsePrometheusText(await response.text());
}

/** Sum of the samples of one series name whose labels include `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  port = await freePort();
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: clusters.remote.kubeconfig, nodeName }],
    node: { leaseRenewIntervalSeconds: 1 },
    extra: { metrics: { port } },
  });
});

afterAll(async () => {
  await tearDownVirtualNode({ host, remote, spillway, nodeName, namespaces: [namespace] });
});

describe('the metrics endpoint', () => {
  it('serves plain HTTP on loopback, with health and readiness', async () => {
    expect(spillway.config.metrics.bindAddress).toBe('127.0.0.1');
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/nothing`)).status).toBe(404);
  });

  it('reports the work of a small burst as it happens', async () => {
    await waitFor('node Ready in the metrics', async () =>
      value(await scrape(), 'spillway_virtual_node_ready', { node: nodeName }) === 1 ? true : undefined,
    );
    const before = await scrape();
    const pods = 10;
    for (let i = 0; i < pods; i++) {
      await host.core.createNamespacedPod({
        namespace,
        body: { metadata: { name: `p-${i}` }, spec: pinnedSpec(remoteName) },
      });
    }
    // During the burst: the queue has taken keys and delegates are being created.
    const during = await waitFor('work under way', async () => {
      const samples = await scrape();
      return value(samples, 'spillway_workqueue_adds_total', { queue: `pods/${nodeName}` }) >
        value(before, 'spillway_workqueue_adds_total', { queue: `pods/${nodeName}` })
        ? samples
        : undefined;
    });
    expect(
      during.some((s) => s.name === 'spillway_workqueue_depth' && s.labels.queue === `pods/${nodeName}`),
    ).toBe(true);
    const after = await waitFor('every delegate Running in the metrics', async () => {
      const samples = await scrape();
      return value(samples, 'spillway_delegates', { node: nodeName, phase: 'Running' }) === pods &&
        value(samples, 'spillway_host_pods', { node: nodeName, phase: 'Running' }) === pods
        ? samples
        : undefined;
    });
    const grew = (name: string, labels: Record<string, string> = {}) =>
      value(after, name, labels) - value(before, name, labels);
    expect(
      grew('spillway_reconcile_total', { controller: 'pods', result: 'success' }),
    ).toBeGreaterThanOrEqual(pods);
    expect(grew('spillway_reconcile_duration_seconds_count', { controller: 'pods' })).toBeGreaterThanOrEqual(
      pods,
    );
    expect(
      grew('spillway_workqueue_work_duration_seconds_count', { queue: `pods/${nodeName}` }),
    ).toBeGreaterThanOrEqual(pods);
    // One delegate created per pod in the remote, and their status written on the host.
    expect(
      grew('spillway_api_requests_total', { cluster: remoteName, verb: 'POST', code: '201' }),
    ).toBeGreaterThanOrEqual(pods);
    expect(
      grew('spillway_api_request_duration_seconds_count', { cluster: 'host', verb: 'PATCH' }),
    ).toBeGreaterThanOrEqual(pods);
    // The node lease is renewed every second: a burst that ends sooner may have seen none.
    await waitFor('a node lease renewal counted', async () =>
      value(await scrape(), 'spillway_lease_renew_duration_seconds_count', { kind: 'node' }) >
      value(before, 'spillway_lease_renew_duration_seconds_count', { kind: 'node' })
        ? true
        : undefined,
    );
    expect(
      value(after, 'spillway_watch_restarts_total', { cluster: remoteName, informer: 'delegates' }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      value(after, 'spillway_informer_relists_total', { cluster: 'host', informer: 'pods' }),
    ).toBeGreaterThanOrEqual(1);
    expect(value(after, 'spillway_virtual_node_ready', { node: nodeName, remote: remoteName })).toBe(1);
    expect(value(after, 'spillway_remote_reachable', { remote: remoteName })).toBe(1);
  });

  it('exports every family the issue lists and every one the alerts and dashboard read', async () => {
    const names = new Set((await scrape()).map((s) => s.name.replace(/_(bucket|count|sum)$/, '')));
    const listed = [
      'spillway_reconcile_duration_seconds',
      'spillway_reconcile_total',
      'spillway_workqueue_depth',
      'spillway_workqueue_adds_total',
      'spillway_workqueue_retries_total',
      'spillway_workqueue_work_duration_seconds',
      'spillway_api_request_duration_seconds',
      'spillway_api_requests_total',
      'spillway_watch_restarts_total',
      'spillway_informer_relists_total',
      'spillway_api_throttled_total',
      'spillway_lease_renew_duration_seconds',
      'spillway_virtual_node_ready',
      'spillway_delegates',
    ];
    expect(listed.filter((name) => !names.has(name))).toEqual([]);
    // Families that only appear once something happened (a failed renewal, HA ownership, an expiring
    // token) are declared all the same: the scrape has their HELP line.
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const declared = new Set([...text.matchAll(/^# HELP (\S+)/gm)].map((m) => m[1]));
    const read = new Set(shippedExpressions().flatMap((e) => spillwayFamilies(e.expr)));
    expect([...read].filter((name) => !declared.has(name))).toEqual([]);
    expect([...declared].every((name) => name?.startsWith('spillway_'))).toBe(true);
  });
});
