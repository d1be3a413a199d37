import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TAINT, loadConfig } from '../../src/config.ts';

let dir: string;
let kubeconfig: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spillway-config-test-'));
  kubeconfig = join(dir, 'remote.kubeconfig');
  await writeFile(kubeconfig, 'apiVersion: v1\nkind: Config\n');
});

async function configFile(yaml: string): Promise<string> {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, yaml);
  return file;
}

describe('loadConfig', () => {
  it('fills defaults and resolves paths relative to the file', async () => {
    const config = loadConfig(
      await configFile(
        'hostClusterName: east\nremotes:\n  - name: west\n    kubeconfig: remote.kubeconfig\n',
      ),
      {},
      {},
    );
    expect(config.hostClusterName).toBe('east');
    expect(config.kubelet).toMatchObject({ address: '127.0.0.1', port: 10250, tls: { mode: 'self-signed' } });
    expect(config.node.taints).toEqual([DEFAULT_TAINT]);
    expect(config.node.remoteUnreachableGraceSeconds).toBe(30);
    expect(config.remotes[0]?.kubeconfig).toBe(kubeconfig);
    expect(config.namespace).toBe('spillway-system');
  });

  it('lets environment variables override the file and flags override both', async () => {
    const file = await configFile('kubelet:\n  port: 10250\n');
    const fromEnv = loadConfig(
      file,
      {},
      { SPILLWAY_KUBELET_PORT: '10300', SPILLWAY_HOST_CLUSTER_NAME: 'env' },
    );
    expect(fromEnv.kubelet.port).toBe(10300);
    expect(fromEnv.hostClusterName).toBe('env');
    const fromFlag = loadConfig(file, { kubeletPort: '10400' }, { SPILLWAY_KUBELET_PORT: '10300' });
    expect(fromFlag.kubelet.port).toBe(10400);
  });

  it.each([
    [
      'an unknown field',
      'remotes:\n  - name: a\n    kubeconfig: remote.kubeconfig\n    kubeconfg: x\n',
      'remotes[0].kubeconfg: unknown field',
    ],
    ['an unknown top-level field', 'hostClustername: x\n', 'hostClustername: unknown field'],
    ['a bad port', 'kubelet:\n  port: 70000\n', 'kubelet.port'],
    [
      'a non-IP kubelet address',
      'kubelet:\n  address: not-an-ip\n',
      'kubelet.address: must be an IP address',
    ],
    [
      'both kubeconfig and secretRef',
      'remotes:\n  - name: a\n    kubeconfig: k\n    secretRef: {name: s}\n',
      'remotes[0]: set exactly one of kubeconfig or secretRef',
    ],
    [
      'a bad remote name',
      'remotes:\n  - name: Bad_Name\n    kubeconfig: k\n',
      'remotes[0].name: must be a DNS label',
    ],
    [
      'a bad quantity',
      'remotes:\n  - name: a\n    kubeconfig: k\n    share: {max: {cpu: lots}}\n',
      'remotes[0].share.max.cpu: not a valid Kubernetes quantity',
    ],
    ['a bad taint effect', 'node:\n  taints: [{key: a, effect: Sometimes}]\n', 'node.taints[0].effect'],
    [
      'a bad regular expression',
      'node:\n  excludeLabels: "(unclosed"\n',
      'node.excludeLabels: not a valid regular expression',
    ],
    [
      'a webhook reached both by URL and by Service',
      'webhook:\n  url: https://spillway.example:9443/mutate-pods\n  service: {namespace: s, name: w}\n',
      'webhook: set at most one of url or service',
    ],
    ['a plain-HTTP webhook URL', 'webhook:\n  url: http://127.0.0.1:9443/x\n', 'webhook.url'],
    ['an unknown DaemonSet policy', 'pods:\n  daemonSets: sometimes\n', 'pods.daemonSets'],
    [
      'an out-of-range burst weight',
      'remotes:\n  - {name: a, kubeconfig: k, burstWeight: 500}\n',
      'remotes[0].burstWeight',
    ],
    [
      'StatefulSet in the partition release policy',
      'pods:\n  partition: {releaseKinds: [ReplicaSet, StatefulSet]}\n',
      'pods.partition.releaseKinds[1]: StatefulSet pods are never released',
    ],
    [
      'bare pods in the partition release policy',
      'pods:\n  partition: {releaseKinds: [Pod]}\n',
      'pods.partition.releaseKinds[0]: bare pods (no controller) are never released',
    ],
    [
      'a malformed controller kind',
      'pods:\n  partition: {releaseKinds: [replicaset]}\n',
      'pods.partition.releaseKinds[0]: must be a controller kind',
    ],
    ['an unknown removal', 'remotes:\n  - {name: a, kubeconfig: k, remove: gently}\n', 'remotes[0].remove'],
    [
      'a remote to drain without credentials',
      'remotes:\n  - {name: a, remove: drain}\n',
      'remotes[0]: set exactly one of kubeconfig or secretRef',
    ],
    [
      'an HA renew deadline not below the lease duration',
      'ha:\n  enabled: true\n  leaseDurationSeconds: 5\n  renewDeadlineSeconds: 5\n',
      'ha.renewDeadlineSeconds: renewDeadlineSeconds must be less than leaseDurationSeconds',
    ],
    ['an unknown HA field', 'ha:\n  replicas: 3\n', 'ha.replicas: unknown field'],
    ['a bad metrics port', 'metrics:\n  port: 0\n', 'metrics.port'],
    ['a bad metrics address', 'metrics:\n  bindAddress: everywhere\n', 'metrics.bindAddress'],
    [
      'duplicate remotes',
      'remotes:\n  - {name: a, kubeconfig: k}\n  - {name: a, kubeconfig: k}\n',
      'remotes[1].name: duplicate remote name',
    ],
  ])('rejects %s, naming the field', async (_what, yaml, message) => {
    const file = await configFile(yaml);
    expect(() => loadConfig(file, {}, {})).toThrow(message);
  });

  it('takes a partition release policy, and a forced removal without credentials', async () => {
    const config = loadConfig(
      await configFile(
        'pods:\n  partition: {releaseKinds: [ReplicaSet, Job]}\nremotes:\n  - {name: gone, remove: force}\n',
      ),
      {},
      {},
    );
    expect(config.pods.partition.releaseKinds).toEqual(['ReplicaSet', 'Job']);
    expect(config.remotes[0]).toMatchObject({ name: 'gone', remove: 'force' });
    const defaults = loadConfig(await configFile('{}\n'), {}, {});
    expect(defaults.pods.partition.releaseKinds).toEqual([]);
  });

  it('serves metrics on loopback outside a pod, and takes ports and the HA identity from flags', async () => {
    const file = await configFile('ha:\n  enabled: true\n');
    const config = loadConfig(
      file,
      { metricsPort: '9300', webhookPort: '9444', haIdentity: 'spillway-0' },
      {},
    );
    expect(config.metrics).toEqual({ enabled: true, port: 9300, bindAddress: '127.0.0.1' });
    expect(config.webhook.port).toBe(9444);
    expect(config.ha).toMatchObject({
      enabled: true,
      leaseDurationSeconds: 10,
      renewDeadlineSeconds: 6,
      retryPeriodSeconds: 2,
    });
    // A restarted replica never takes its predecessor's Leases for its own.
    expect(config.ha.identity).toMatch(/^spillway-0_[0-9a-f]{6}$/);
    expect(loadConfig(file, { haIdentity: 'spillway-0' }, {}).ha.identity).not.toBe(config.ha.identity);
    const fromEnv = loadConfig(file, {}, { SPILLWAY_METRICS_PORT: '9301', SPILLWAY_HA_IDENTITY: 'pod-a' });
    expect(fromEnv.metrics.port).toBe(9301);
    expect(fromEnv.ha.identity).toMatch(/^pod-a_/);
  });

  it('rejects a missing configuration file and invalid YAML', async () => {
    expect(() => loadConfig(join(dir, 'absent.yaml'), {}, {})).toThrow('--config: file not found');
    const broken = await configFile('remotes: [\n');
    expect(() => loadConfig(broken, {}, {})).toThrow('is not valid YAML');
  });
});
