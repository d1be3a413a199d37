// Readiness checks and first-start setup of a local cluster: kwok's CRDs, the kubelet-client RBAC a
// kubeadm cluster would have, and the simulated nodes of the cluster's shape.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { type RequestOptions, request } from 'node:https';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Node,
} from '@kubernetes/client-node';
import type { Binaries } from './binaries.ts';
import { SIMULATED_NODE_ANNOTATION, SIMULATED_NODE_ANNOTATION_VALUE } from './components.ts';
import { kubectl } from './kubectl.ts';
import type { ClusterShape, SimulatedNode } from './shapes.ts';

type FailureProbe = () => void;

async function poll(what: string, timeoutMs: number, probe: FailureProbe, check: () => Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    probe();
    try {
      if (await check()) return;
    } catch (error) {
      lastError = error;
    }
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`, { cause: lastError });
}

export function waitForEtcd(port: number, probe: FailureProbe): Promise<void> {
  return poll(
    'etcd /health',
    60_000,
    probe,
    () =>
      new Promise((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/health', timeout: 2000 }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
        });
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.end();
      }),
  );
}

/** GET a path on the API server with the kubeconfig's credentials; resolves with status and body. */
export async function apiGet(kubeconfig: string, path: string): Promise<{ status: number; body: string }> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const url = new URL(path, kc.getCurrentCluster()?.server);
  const options: RequestOptions = { timeout: 5000 };
  await kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = request(url, options, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

export function waitForApiserver(kubeconfig: string, probe: FailureProbe): Promise<void> {
  return poll(
    'kube-apiserver /readyz',
    120_000,
    probe,
    async () => (await apiGet(kubeconfig, '/readyz')).status === 200,
  );
}

function simulatedNode(node: SimulatedNode): V1Node {
  const resources: Record<string, string> = {
    cpu: node.cpu,
    memory: node.memory,
    pods: node.pods,
    ...(node.ephemeralStorage ? { 'ephemeral-storage': node.ephemeralStorage } : {}),
    ...node.extendedResources,
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      annotations: {
        [SIMULATED_NODE_ANNOTATION]: SIMULATED_NODE_ANNOTATION_VALUE,
        'node.alpha.kubernetes.io/ttl': '0',
        // Where kwok serves this node's kubelet resource metrics (see kwok/metrics.yaml).
        'metrics.k8s.io/resource-metrics-path': `/metrics/nodes/${node.name}/metrics/resource`,
      },
      labels: {
        'kubernetes.io/hostname': node.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        ...node.labels,
      },
    },
    spec: {},
    status: {
      capacity: resources,
      allocatable: resources,
      // The API server reaches the simulated kubelet (kwok) at this address; loopback only.
      addresses: [
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: node.name },
      ],
      nodeInfo: {
        architecture: 'amd64',
        operatingSystem: 'linux',
        bootID: '',
        containerRuntimeVersion: '',
        kernelVersion: '',
        kubeProxyVersion: '',
        kubeletVersion: '',
        machineID: '',
        osImage: '',
        systemUUID: '',
      },
    },
  };
}

/** Creates a simulated node that kwok will run (capacity and addresses are kept from creation). */
export async function createSimulatedNode(kubeconfig: string, node: SimulatedNode): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  await kc.makeApiClient(CoreV1Api).createNode({ body: simulatedNode(node) });
}

export async function bootstrapCluster(
  kubeconfig: string,
  binaries: Binaries,
  shape: ClusterShape,
  clusterDir: string,
): Promise<void> {
  await kubectl(binaries.kubectl, kubeconfig, ['apply', '--server-side', '-f', binaries.kwokCrds]);
  await kubectl(binaries.kubectl, kubeconfig, [
    'wait',
    '--for=condition=Established',
    'crd',
    '--all',
    '--timeout=60s',
  ]);
  await kubectl(binaries.kubectl, kubeconfig, [
    'apply',
    '-f',
    join(import.meta.dirname, 'kwok', 'metrics.yaml'),
  ]);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  // kubeadm grants the API server's kubelet-client identity the kubelet API; do the same.
  await kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
    body: {
      metadata: { name: 'kube-apiserver-kubelet-client' },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'ClusterRole',
        name: 'system:kubelet-api-admin',
      },
      subjects: [
        { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'kube-apiserver-kubelet-client' },
      ],
    },
  });
  for (const node of shape.nodes) await createSimulatedNode(kubeconfig, node);
  if (shape.answerEveryPod) await answerEveryPod(kubeconfig, binaries, clusterDir);
}

/** The cluster-wide kwok rules that answer exec, attach and logs for every pod (kwok/answer-every-pod.yaml). */
export async function answerEveryPod(
  kubeconfig: string,
  binaries: Binaries,
  clusterDir: string,
): Promise<void> {
  await mkdir(join(clusterDir, 'kwok', 'exec'), { recursive: true });
  const line = 'this pod is simulated by KWOK: no container ran, so there is no log of its own';
  await writeFile(
    join(clusterDir, 'kwok', 'every-pod.log'),
    `${new Date().toISOString()} stdout F ${line}\n`,
  );
  const template = await readFile(join(import.meta.dirname, 'kwok', 'answer-every-pod.yaml'), 'utf8');
  await kubectl(binaries.kubectl, kubeconfig, ['apply', '-f', '-'], {
    input: template.replaceAll('__DIR__', clusterDir),
  });
}

/**
 * Registers metrics-server as the metrics.k8s.io API, the way its release manifest does, except that
 * the Service is an ExternalName for localhost: the aggregator dials localhost:<port> directly.
 * Applied on every start (idempotent), so a cluster keeps it across restarts.
 */
export async function registerMetricsServer(
  kubeconfig: string,
  binaries: Binaries,
  port: number,
): Promise<void> {
  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'metrics-server', namespace: 'kube-system', labels: { 'k8s-app': 'metrics-server' } },
    spec: {
      type: 'ExternalName',
      externalName: 'localhost',
      ports: [{ name: 'https', port, protocol: 'TCP' }],
    },
  };
  const apiService = {
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: { name: 'v1beta1.metrics.k8s.io', labels: { 'k8s-app': 'metrics-server' } },
    spec: {
      group: 'metrics.k8s.io',
      version: 'v1beta1',
      service: { name: 'metrics-server', namespace: 'kube-system', port },
      // metrics-server serves a self-signed certificate it generates at start.
      insecureSkipTLSVerify: true,
      groupPriorityMinimum: 100,
      versionPriority: 100,
    },
  };
  await kubectl(
    binaries.kubectl,
    kubeconfig,
    ['apply', '--server-side', '--force-conflicts', '--field-manager=spillway-test-cluster', '-f', '-'],
    { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [service, apiService] }) },
  );
}

/**
 * Deletes the node leases a previous kwok process held, so the new one manages the simulated nodes at
 * once instead of waiting for them to expire (kwok only manages nodes whose lease it holds).
 */
export async function releaseSimulatedNodeLeases(kubeconfig: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const coordination = kc.makeApiClient(CoordinationV1Api);
  const nodes = await core.listNode();
  for (const node of nodes.items) {
    if (node.metadata?.annotations?.[SIMULATED_NODE_ANNOTATION] !== SIMULATED_NODE_ANNOTATION_VALUE) continue;
    await coordination
      .deleteNamespacedLease({ name: node.metadata.name as string, namespace: 'kube-node-lease' })
      .catch(() => undefined);
  }
}

/** Waits until kwok reports every simulated node Ready and the default ServiceAccount exists. */
export function waitForNodesReady(
  kubeconfig: string,
  shape: ClusterShape,
  probe: FailureProbe,
): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  return poll('simulated nodes Ready and the default ServiceAccount', 120_000, probe, async () => {
    const nodes = await core.listNode({ labelSelector: 'type=kwok' });
    const ready = nodes.items.filter((n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    ).length;
    if (ready < shape.nodes.length) return false;
    await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
    return true;
  });
}
