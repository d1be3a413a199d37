// What every real-node test file shares: the remote cluster whose node is a real kubelet (one for the
// whole run), a Spillway of the file's own whose virtual node stands for that remote in the host, and
// kubectl run twice: through the host (host API server → Spillway → remote) and directly against the
// remote for the delegate of the same name, which is the reference.
import { type ChildProcess, spawn } from 'node:child_process';
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import { IMAGE_NAMES } from '../cluster/images/images.ts';
import type { KubectlOptions, KubectlResult } from '../cluster/kubectl.ts';
import { REAL_NODE_CLUSTER } from '../cluster/paths.ts';
import type { ClusterInfo } from '../cluster/provider.ts';
import { type Kube, kube, uniqueSuffix } from '../support/kube.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';
import { delegatesCollected, VIRTUAL_NODE_TOLERATION } from '../support/workloads.ts';

export const BUSYBOX = IMAGE_NAMES.busybox;
export const AGNHOST = IMAGE_NAMES.agnhost;
export const SIDES = ['host', 'remote'] as const;
export type Side = (typeof SIDES)[number];

export interface RealNodeEnv {
  readonly namespace: string;
  readonly remoteName: string;
  readonly nodeName: string;
  readonly host: Kube;
  readonly remote: Kube;
  readonly remoteInfo: ClusterInfo;
  /** kubectl in the test namespace of one side. */
  kubectl(side: Side, args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** The same kubectl command through the host and directly against the remote. */
  both(args: readonly string[], options?: KubectlOptions): Promise<Record<Side, KubectlResult>>;
  /** A long-running kubectl (logs -f, attach, port-forward) on one side. */
  spawnKubectl(side: Side, args: readonly string[]): ChildProcess;
  /** Creates a host pod pinned to the virtual node; returns once host pod and delegate exist. */
  createPod(name: string, spec: Partial<V1PodSpec>, labels?: Record<string, string>): Promise<void>;
  readPod(side: Side, name: string): Promise<V1Pod>;
  /** Waits until the pod is Running and Ready on both sides. */
  waitReady(name: string, timeoutMs?: number): Promise<void>;
  /** Waits until `check` holds for the pod on both sides (for example a terminal phase). */
  waitBoth(
    what: string,
    name: string,
    check: (pod: V1Pod) => boolean,
    timeoutMs?: number,
  ): Promise<Record<Side, V1Pod>>;
  cleanup(): Promise<void>;
}

export function kubeconfigOf(env: RealNodeEnv, side: Side): string {
  return side === 'host' ? clusters.host.kubeconfig : env.remoteInfo.kubeconfig;
}

/** The shared real-node remote, a namespace on both sides and a Spillway for this file. */
export async function realNodeEnv(prefix: string): Promise<RealNodeEnv> {
  const remoteInfo = await clusters.ensure(REAL_NODE_CLUSTER, 'remote', { realNode: true });
  const suffix = uniqueSuffix();
  const namespace = `${prefix}-${suffix}`;
  const remoteName = `real-${prefix}-${suffix}`;
  const nodeName = `spillway-${remoteName}`;
  const host = kube(clusters.host.kubeconfig);
  const remote = kube(remoteInfo.kubeconfig);
  await host.core.createNamespace({ body: { metadata: { name: namespace } } });
  await remote.core.createNamespace({ body: { metadata: { name: namespace } } });
  const spillway: Spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [{ name: remoteName, kubeconfig: remoteInfo.kubeconfig, nodeName }],
  });
  const kubeOf = (side: Side) => (side === 'host' ? host : remote);
  const env: RealNodeEnv = {
    namespace,
    remoteName,
    nodeName,
    host,
    remote,
    remoteInfo,
    kubectl: (side, args, options) =>
      clusters.kubectl(side === 'host' ? 'host' : REAL_NODE_CLUSTER, ['-n', namespace, ...args], options),
    async both(args, options) {
      const [hostResult, remoteResult] = [
        await env.kubectl('host', args, { allowFailure: true, ...options }),
        await env.kubectl('remote', args, { allowFailure: true, ...options }),
      ];
      return { host: hostResult, remote: remoteResult };
    },
    spawnKubectl: (side, args) =>
      spawn(clusters.kubectlBinary, [`--kubeconfig=${kubeconfigOf(env, side)}`, '-n', namespace, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    async createPod(name, spec, labels = {}) {
      await host.core.createNamespacedPod({
        namespace,
        body: {
          metadata: { name, labels: { app: name, ...labels } },
          spec: {
            nodeSelector: { 'spillway.dev/cluster': remoteName },
            tolerations: [VIRTUAL_NODE_TOLERATION],
            containers: [],
            ...spec,
          },
        },
      });
      await waitFor(`delegate of ${name}`, async () =>
        (await remote.core.readNamespacedPod({ name, namespace }).catch(() => undefined)) ? true : undefined,
      );
    },
    readPod: (side, name) => kubeOf(side).core.readNamespacedPod({ name, namespace }),
    async waitReady(name, timeoutMs = 120_000) {
      await env.waitBoth(
        'Running and Ready',
        name,
        (pod) =>
          pod.status?.phase === 'Running' &&
          (pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false),
        timeoutMs,
      );
    },
    async waitBoth(what, name, check, timeoutMs = 120_000) {
      const result = {} as Record<Side, V1Pod>;
      for (const side of SIDES) {
        result[side] = await waitFor(
          `${side} pod ${name} ${what}`,
          async () => {
            const pod = await env.readPod(side, name);
            return check(pod) ? pod : undefined;
          },
          { timeoutMs, intervalMs: 500 },
        );
      }
      return result;
    },
    async cleanup() {
      await host.core.deleteNamespace({ name: namespace }).catch(() => {});
      await delegatesCollected(remote, namespace);
      await spillway.stop();
      await host.core.deleteNode({ name: nodeName }).catch(() => {});
      await remote.core.deleteNamespace({ name: namespace }).catch(() => {});
    },
  };
  return env;
}

/** Collects a child's stdout until `text` appears (or the deadline passes). */
export async function outputUntil(
  child: ChildProcess,
  text: string | RegExp,
  timeoutMs = 60_000,
): Promise<string> {
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  return waitFor(
    `output ${String(text)}`,
    () => ((typeof text === 'string' ? output.includes(text) : text.test(output)) ? output : undefined),
    { timeoutMs },
  );
}

/** A container's status on one side, by name. */
export function containerStatus(pod: V1Pod, container: string) {
  return [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])].find(
    (s) => s.name === container,
  );
}

/**
 * A pod whose container prints "run N" (N = 0, 1, …), exits with `exitCode` on its first run and
 * stays up on its second: a real crash and a real restart, with a previous log to read.
 */
export function crashesOnce(exitCode: number): Partial<V1PodSpec> {
  return {
    containers: [
      {
        name: 'main',
        image: BUSYBOX,
        command: [
          'sh',
          '-c',
          `echo "run $(ls /data | wc -l)"; if [ -f /data/ran ]; then sleep 3600; fi; touch /data/ran; exit ${exitCode}`,
        ],
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
      },
    ],
    volumes: [{ name: 'data', emptyDir: {} }],
  };
}
