// What real containers do to a pod's status, as the host sees it through its virtual node: init
// containers, crashes and restarts, the OOM killer, probes, a Job that really runs, and usage from the
// real kubelet. Each is compared with the delegate the remote reports (the reference).
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQuantity } from '../../src/kube/quantity.ts';
import { waitFor } from '../support/wait.ts';
import { createJob, readJob } from '../support/workloads.ts';
import {
  AGNHOST,
  BUSYBOX,
  containerStatus,
  crashesOnce,
  type RealNodeEnv,
  realNodeEnv,
  type SIDES,
} from './support.ts';

let env: RealNodeEnv;

const finished = (pod: V1Pod) => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

/** What a container's status says, without the parts that name the side (IDs are the same; times too). */
function essentials(status: V1ContainerStatus | undefined) {
  const terminated = (s: V1ContainerStatus['state']) =>
    s?.terminated && { exitCode: s.terminated.exitCode, reason: s.terminated.reason };
  return {
    name: status?.name,
    ready: status?.ready,
    restartCount: status?.restartCount,
    image: status?.image,
    imageID: status?.imageID,
    containerID: status?.containerID,
    running: status?.state?.running !== undefined,
    terminated: terminated(status?.state),
    waiting: status?.state?.waiting?.reason,
    lastTerminated: terminated(status?.lastState),
  };
}

beforeAll(async () => {
  env = await realNodeEnv('rlife');
  await env.createPod('initialised', {
    initContainers: [
      {
        name: 'prepare',
        image: BUSYBOX,
        command: ['sh', '-c', 'echo prepared > /work/state; echo init done'],
        volumeMounts: [{ name: 'work', mountPath: '/work' }],
      },
    ],
    containers: [
      {
        name: 'main',
        image: BUSYBOX,
        command: ['sh', '-c', 'cat /work/state; sleep 3600'],
        volumeMounts: [{ name: 'work', mountPath: '/work' }],
      },
    ],
    volumes: [{ name: 'work', emptyDir: {} }],
  });
  await env.createPod('crasher', crashesOnce(7));
  await env.createPod('hog', {
    restartPolicy: 'Never',
    containers: [
      {
        name: 'main',
        image: BUSYBOX,
        // tail keeps the whole (endless, newline-free) last line in memory.
        command: ['tail', '/dev/zero'],
        resources: { limits: { memory: '32Mi' }, requests: { memory: '32Mi' } },
      },
    ],
  });
  await env.createPod('failing', {
    restartPolicy: 'Never',
    containers: [{ name: 'main', image: BUSYBOX, command: ['sh', '-c', 'echo failing; exit 3'] }],
  });
  await env.createPod('probed', {
    containers: [
      {
        name: 'main',
        image: BUSYBOX,
        command: ['sh', '-c', 'touch /tmp/alive; sleep 3600'],
        readinessProbe: { exec: { command: ['cat', '/tmp/ready'] }, periodSeconds: 1, failureThreshold: 1 },
        livenessProbe: { exec: { command: ['cat', '/tmp/alive'] }, periodSeconds: 1, failureThreshold: 2 },
      },
    ],
  });
  await env.createPod('busy', {
    containers: [
      {
        name: 'main',
        image: AGNHOST,
        args: ['netexec', '--http-port=8080'],
        readinessProbe: { httpGet: { path: '/hostname', port: 8080 }, periodSeconds: 2 },
        resources: { requests: { cpu: '10m', memory: '16Mi' } },
      },
    ],
  });
});

afterAll(async () => {
  await env?.cleanup();
});

describe('pod status from real containers', { tags: ['real-node'] }, () => {
  it('runs init containers first and reports them completed', async () => {
    await env.waitReady('initialised');
    const pods = {
      host: await env.readPod('host', 'initialised'),
      remote: await env.readPod('remote', 'initialised'),
    };
    const init = containerStatus(pods.host, 'prepare');
    expect(init?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(essentials(init)).toEqual(essentials(containerStatus(pods.remote, 'prepare')));
    expect(pods.host.status?.conditions?.find((c) => c.type === 'Initialized')?.status).toBe('True');
    const logs = await env.both(['logs', 'initialised', '-c', 'prepare']);
    expect(logs.host.stdout).toBe('init done\n');
    expect(logs.host).toEqual(logs.remote);
    const main = await env.both(['logs', 'initialised', '-c', 'main']);
    expect(main.host.stdout).toBe('prepared\n');
    expect(main.host).toEqual(main.remote);
  });

  it('counts a real crash as a restart, with the exit code in lastState', async () => {
    const pods = await env.waitBoth('restarted and running', 'crasher', (pod) => {
      const status = containerStatus(pod, 'main');
      return status?.restartCount === 1 && status.state?.running !== undefined;
    });
    const host = containerStatus(pods.host, 'main');
    expect(host?.lastState?.terminated).toMatchObject({ exitCode: 7, reason: 'Error' });
    expect(essentials(host)).toEqual(essentials(containerStatus(pods.remote, 'main')));
    const previous = await env.both(['logs', 'crasher', '--previous']);
    expect(previous.host.stdout).toBe('run 0\n');
    expect(previous.host).toEqual(previous.remote);
  });

  it('reports the OOM killer: OOMKilled, exit code 137, pod Failed', async () => {
    const pods = await env.waitBoth('finished', 'hog', finished);
    expect(pods.host.status?.phase).toBe('Failed');
    const host = containerStatus(pods.host, 'main');
    expect(host?.state?.terminated).toMatchObject({ exitCode: 137, reason: 'OOMKilled' });
    expect(essentials(host)).toEqual(essentials(containerStatus(pods.remote, 'main')));
  });

  it('fails a pod whose container exits non-zero with restartPolicy Never', async () => {
    const pods = await env.waitBoth('finished', 'failing', finished);
    expect(pods.host.status?.phase).toBe('Failed');
    expect(containerStatus(pods.host, 'main')?.state?.terminated).toMatchObject({
      exitCode: 3,
      reason: 'Error',
    });
    expect(essentials(containerStatus(pods.host, 'main'))).toEqual(
      essentials(containerStatus(pods.remote, 'main')),
    );
    expect(pods.host.status?.phase).toBe(pods.remote.status?.phase);
  });

  it('shows readiness and liveness probes as the kubelet runs them', async () => {
    const readyOf = (pod: V1Pod) => pod.status?.conditions?.find((c) => c.type === 'Ready')?.status;
    await env.waitBoth(
      'running, not ready',
      'probed',
      (pod) => pod.status?.phase === 'Running' && readyOf(pod) === 'False',
    );
    await env.kubectl('remote', ['exec', 'probed', '--', 'touch', '/tmp/ready']);
    await env.waitBoth('ready', 'probed', (pod) => readyOf(pod) === 'True');
    expect(containerStatus(await env.readPod('host', 'probed'), 'main')?.ready).toBe(true);
    await env.kubectl('remote', ['exec', 'probed', '--', 'rm', '/tmp/ready']);
    await env.waitBoth('not ready again', 'probed', (pod) => readyOf(pod) === 'False');
    // The liveness probe fails twice: the kubelet kills and restarts the container.
    await env.kubectl('remote', ['exec', 'probed', '--', 'rm', '/tmp/alive']);
    const pods = await env.waitBoth('restarted by its liveness probe', 'probed', (pod) => {
      const status = containerStatus(pod, 'main');
      return (status?.restartCount ?? 0) >= 1;
    });
    expect(containerStatus(pods.host, 'main')?.lastState?.terminated?.exitCode).toBe(137);
    // The remote's probe events are on the host pod too.
    await waitFor('Unhealthy event on the host pod', async () => {
      const events = await env.host.core.listNamespacedEvent({
        namespace: env.namespace,
        fieldSelector: 'involvedObject.name=probed',
      });
      return events.items.some(
        (e) => e.reason === 'Unhealthy' && e.message?.includes('Liveness probe failed'),
      )
        ? true
        : undefined;
    });
  });

  it('runs a Job to completion for real', async () => {
    await createJob(env.host, env.namespace, 'compute', {
      nodeSelector: { 'spillway.dev/cluster': env.remoteName },
      tolerations: [{ key: 'virtual-kubelet.io/provider', operator: 'Exists' }],
      containers: [
        { name: 'main', image: BUSYBOX, command: ['sh', '-c', 'echo computing; sleep 2; echo done'] },
      ],
    });
    const job = await waitFor(
      'Job compute complete',
      async () => {
        const current = await readJob(env.host, env.namespace, 'compute');
        return current.status?.succeeded === 1 ? current : undefined;
      },
      { timeoutMs: 120_000 },
    );
    expect(job.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True')).toBe(true);
    const [pod] = (
      await env.host.core.listNamespacedPod({ namespace: env.namespace, labelSelector: 'job-name=compute' })
    ).items;
    const name = pod?.metadata?.name as string;
    const pods = await env.waitBoth('succeeded', name, (p) => p.status?.phase === 'Succeeded');
    expect(essentials(containerStatus(pods.host, 'main'))).toEqual(
      essentials(containerStatus(pods.remote, 'main')),
    );
    const logs = await env.both(['logs', name]);
    expect(logs.host.stdout).toBe('computing\ndone\n');
    expect(logs.host).toEqual(logs.remote);
  });

  it('shows the real kubelet’s usage with kubectl top', async () => {
    await env.waitReady('busy');
    const usage = async (side: (typeof SIDES)[number]) =>
      waitFor(
        `${side} kubectl top pod busy`,
        async () => {
          const result = await env.kubectl(side, ['top', 'pod', 'busy', '--no-headers'], {
            allowFailure: true,
          });
          const [, cpu, memory] = result.stdout.trim().split(/\s+/);
          return result.exitCode === 0 && cpu && memory
            ? { cpu: parseQuantity(cpu), memory: parseQuantity(memory) }
            : undefined;
        },
        { timeoutMs: 150_000, intervalMs: 3000 },
      );
    const remote = await usage('remote');
    const host = await usage('host');
    // A real process: megabytes of memory (agnhost is a Go program), read by the remote's
    // metrics-server from the real kubelet and handed on by Spillway; the two reads are seconds apart.
    expect(remote.memory).toBeGreaterThan(1024n * 1024n * 1_000_000_000n);
    expect(host.memory).toBeGreaterThan(remote.memory / 2n);
    expect(host.memory).toBeLessThan(remote.memory * 2n);
  });
});
