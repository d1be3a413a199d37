// The pods the benchmarks create: bound to a node already (`spec.nodeName`, so neither the host
// scheduler nor a controller's rate limits stand between the benchmark and the provider), tolerating
// the virtual node's taint, and reading one ConfigMap of their namespace as most real pods read some
// configuration (which Spillway reflects into the remote namespace).
import { type BenchCluster, createOrKeep, inParallel, namespaceOf, sleep } from './api.ts';

export const CONFIG_MAP = 'bench-config';

export function boundPod(name: string, nodeName: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { bench: 'scale' } },
    spec: {
      nodeName,
      tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Exists' }],
      containers: [
        {
          name: 'main',
          image: 'nginx',
          env: [{ name: 'GREETING', valueFrom: { configMapKeyRef: { name: CONFIG_MAP, key: 'greeting' } } }],
        },
      ],
    },
  };
}

/** A namespace with the ConfigMap its pods read. */
export async function benchNamespace(cluster: BenchCluster, namespace: string): Promise<void> {
  await createOrKeep(cluster.client, '/api/v1/namespaces', namespaceOf(namespace));
  await createOrKeep(cluster.client, `/api/v1/namespaces/${namespace}/configmaps`, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: CONFIG_MAP },
    data: { greeting: 'hello' },
  });
}

export async function createPod(host: BenchCluster, namespace: string, name: string, nodeName: string) {
  await createOrKeep(host.client, `/api/v1/namespaces/${namespace}/pods`, boundPod(name, nodeName));
}

/** Creates the pods as fast as 50 parallel clients can (a burst). */
export async function createBurst(
  host: BenchCluster,
  namespace: string,
  nodeName: string,
  names: readonly string[],
): Promise<void> {
  await inParallel(names, 50, (name) => createPod(host, namespace, name, nodeName));
}

/**
 * Pods arriving as a Poisson process of `perSecond` for `seconds` (exponential gaps, from a seeded
 * generator so runs are alike); each is created when it arrives, not waiting for the previous one.
 * Resolves with the names once every create has returned.
 */
export async function createPoisson(
  host: BenchCluster,
  namespace: string,
  nodeName: string,
  perSecond: number,
  seconds: number,
): Promise<string[]> {
  let seed = 0x2545f491;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return ((seed >>> 0) + 0.5) / 2 ** 32;
  };
  const names: string[] = [];
  const creates: Promise<void>[] = [];
  const start = Date.now();
  for (let at = 0; at < seconds * 1000; at += (-Math.log(random()) / perSecond) * 1000) {
    const wait = start + at - Date.now();
    if (wait > 0) await sleep(wait);
    const name = `pod-${names.length}`;
    names.push(name);
    creates.push(createPod(host, namespace, name, nodeName));
  }
  await Promise.all(creates);
  return names;
}
