// What one cached pod costs in the heap, per cache: the informers keep every host pod and every
// delegate, and the capacity view every running pod of the remote, so at 10,000 pods each kilobyte
// here is about 10 MiB of live heap (and more RSS: V8 keeps headroom above the live heap). The pod
// is shaped like the scale benchmark's pod (bench/lib/workload.ts) as kube-apiserver returns it once
// mirrored: defaulted spec, the service-account token volume, five conditions and a running
// container. Each pod is parsed from its own JSON text as a watch event would be, with its own uid,
// IP and container ID, so nothing is shared that a real cache would not share.
/* biome-ignore-all lint/suspicious/noConsole: a benchmark reports on the console */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { V1Pod } from '@kubernetes/client-node';
import { trimPod } from '../src/node/remote-view.ts';
import { trimDelegate, trimHostPod } from '../src/pods/trim.ts';
import { machine } from './lib/context.ts';
import { formatTable } from './lib/stats.ts';

const root = join(import.meta.dirname, '..');
const STARTED = '2026-12-02T15:22:33Z';

function apiServerPod(i: number): string {
  const token = `kube-api-access-${(i * 7919).toString(36).slice(-5)}`;
  const ip = `10.244.${(i >> 8) & 255}.${i & 255}`;
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: `burst-${i}`,
      namespace: 'bench-burst',
      uid: `5f0c7a8e-1b2c-4d3e-9f00-${String(i).padStart(12, '0')}`,
      resourceVersion: String(100_000 + i),
      creationTimestamp: '2026-12-02T15:22:31Z',
      labels: { bench: 'scale' },
      finalizers: ['spillway.io/delegate'],
      managedFields: [
        {
          manager: 'bench',
          operation: 'Update',
          apiVersion: 'v1',
          time: '2026-12-02T15:22:31Z',
          fieldsType: 'FieldsV1',
          fieldsV1: {
            'f:metadata': { 'f:labels': { '.': {}, 'f:bench': {} } },
            'f:spec': { 'f:containers': {} },
          },
        },
      ],
    },
    spec: {
      volumes: [
        {
          name: token,
          projected: {
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              {
                downwardAPI: {
                  items: [
                    { path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
                  ],
                },
              },
            ],
            defaultMode: 420,
          },
        },
      ],
      containers: [
        {
          name: 'main',
          image: 'nginx',
          env: [
            { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'bench-config', key: 'greeting' } } },
          ],
          resources: {},
          volumeMounts: [
            { name: token, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
          ],
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'Always',
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      serviceAccount: 'default',
      nodeName: 'spillway-remote-a',
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [
        { key: 'virtual-kubelet.io/provider', operator: 'Exists' },
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
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
    },
    status: {
      phase: 'Running',
      conditions: [
        'PodReadyToStartContainers',
        'Initialized',
        'Ready',
        'ContainersReady',
        'PodScheduled',
      ].map((type) => ({
        type,
        status: 'True',
        lastProbeTime: null,
        lastTransitionTime: STARTED,
        observedGeneration: 1,
      })),
      hostIP: '10.0.0.1',
      hostIPs: [{ ip: '10.0.0.1' }],
      podIP: ip,
      podIPs: [{ ip }],
      startTime: STARTED,
      qosClass: 'BestEffort',
      observedGeneration: 1,
      containerStatuses: [
        {
          name: 'main',
          state: { running: { startedAt: STARTED } },
          lastState: {},
          ready: true,
          restartCount: 0,
          image: 'docker.io/library/nginx:latest',
          imageID: `docker.io/library/nginx@sha256:${'0'.repeat(64)}`,
          containerID: `containerd://${String(i).padStart(64, '0')}`,
          started: true,
          volumeMounts: [
            {
              name: token,
              mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
              readOnly: true,
              recursiveReadOnly: 'Disabled',
            },
          ],
        },
      ],
    },
  });
}

const CACHES: Record<string, (pod: V1Pod) => unknown> = {
  'as decoded (no trim)': (pod) => pod,
  'host pod (trimHostPod)': trimHostPod,
  'delegate (trimDelegate)': trimDelegate,
  'capacity view (trimPod)': (pod) => trimPod(pod, 'host'),
};

// In its own frame, so the pods one cache kept are garbage before the next is measured.
function bytesPerPod(transform: (pod: V1Pod) => unknown, pods: number, gc: () => void): number {
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept: unknown[] = [];
  for (let i = 0; i < pods; i++) kept.push(transform(JSON.parse(apiServerPod(i)) as V1Pod));
  gc();
  return Math.round((process.memoryUsage().heapUsed - before) / kept.length);
}

/**
 * Live heap bytes per pod for `options.pods` pods kept by each cache's transform. The caches share
 * one string table (kube/intern.ts) as in Spillway, so a short string an earlier row interned (a
 * name, a uid) is not counted again in a later row: the later rows are a little low.
 */
export async function benchCache(options: { pods: number }): Promise<void> {
  if (!Number.isInteger(options.pods) || options.pods < 100) throw new Error('--pods: an integer ≥ 100');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const perPod: Record<string, number> = {};
  for (const [cache, transform] of Object.entries(CACHES))
    perPod[cache] = bytesPerPod(transform, options.pods, gc);
  const result = {
    date: new Date().toISOString(),
    machine: machine(),
    pods: options.pods,
    jsonBytesPerPod: apiServerPod(0).length,
    heapBytesPerPod: perPod,
  };
  console.log(
    formatTable([
      ['cache', 'heap bytes per pod', `MiB for ${options.pods}`],
      ...Object.entries(perPod).map(([cache, bytes]) => [
        cache,
        String(bytes),
        ((bytes * options.pods) / 2 ** 20).toFixed(1),
      ]),
    ]),
  );
  await mkdir(join(root, 'bench', 'results'), { recursive: true });
  const file = join(root, 'bench', 'results', `cache-${result.date.replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`results: ${file}`);
}
