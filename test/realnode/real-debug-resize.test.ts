// kubectl debug and in-place resize on real containers, through the host and its virtual node: the
// ephemeral container runs in the target's process namespace, can be attached and logged; a resize is
// applied by the real kubelet and its answer (allocated and actual resources, PodResizePending) comes
// back. The same command run directly against a plain remote pod of the same spec is the reference.
import type { V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseQuantity } from '../../src/kube/quantity.ts';
import { LABEL_VIRTUAL_NODE } from '../../src/ownership.ts';
import { waitFor } from '../support/wait.ts';
import { BUSYBOX, outputUntil, type RealNodeEnv, realNodeEnv, type Side } from './support.ts';

let env: RealNodeEnv;

const sleeper = (extra: Partial<V1PodSpec['containers'][number]> = {}): Partial<V1PodSpec> => ({
  containers: [{ name: 'main', image: BUSYBOX, command: ['sleep', '3600'], ...extra }],
});

// cpu requests below limits: the pod is Burstable, and a resize may not change its QoS class.
const sized = sleeper({
  resources: { requests: { cpu: '100m', memory: '32Mi' }, limits: { cpu: '200m', memory: '32Mi' } },
  resizePolicy: [
    { resourceName: 'cpu', restartPolicy: 'NotRequired' },
    { resourceName: 'memory', restartPolicy: 'NotRequired' },
  ],
});

/** A plain pod in the remote, not a delegate: the reference for subresource commands. */
async function referencePod(name: string, spec: Partial<V1PodSpec>): Promise<void> {
  await env.remote.core.createNamespacedPod({
    namespace: env.namespace,
    body: { metadata: { name }, spec: { containers: [], ...spec } as V1PodSpec },
  });
  await waitFor(
    `reference pod ${name} running`,
    async () => {
      const pod = await env.remote.core.readNamespacedPod({ name, namespace: env.namespace });
      return pod.status?.phase === 'Running' ? true : undefined;
    },
    { timeoutMs: 120_000 },
  );
}

/** The pod a command names on each side: the host pod through the host, the reference directly. */
const target = (side: Side, pod: string) => (side === 'host' ? pod : `${pod}-ref`);

beforeAll(async () => {
  env = await realNodeEnv('rdebug');
  await env.createPod('debuggee', sleeper());
  await env.createPod('sized', sized);
  // A delegate holding 600m of the real node's 2 CPUs: room enough for a resize the API servers allow
  // (they check the pod against the node's allocatable) that the kubelet must defer.
  await env.createPod('ballast', sleeper({ resources: { requests: { cpu: '600m' } } }));
  for (const pod of ['debuggee', 'sized', 'ballast']) await env.waitReady(pod);
  await referencePod('debuggee-ref', sleeper());
  await referencePod('sized-ref', sized);
});

afterAll(async () => {
  await env?.cleanup();
});

describe('kubectl debug on a real container', { tags: ['real-node'] }, () => {
  it('adds an ephemeral container that runs in the target’s process namespace, as on the remote', async () => {
    // The container waits for a line on stdin, so it cannot finish before kubectl has attached to it;
    // stdin stays open until its output is in (kubectl ends an attach whose stdin has closed).
    const script = 'read -r go; echo "debug-$go"; tr "\\0" " " < /proc/1/cmdline; echo; echo done';
    const output: Partial<Record<Side, string>> = {};
    for (const side of ['host', 'remote'] as const) {
      const debug = env.spawnKubectl(side, [
        'debug',
        '-i',
        target(side, 'debuggee'),
        `--image=${BUSYBOX}`,
        '--target=main',
        '-c',
        'debugger',
        '--',
        'sh',
        '-c',
        script,
      ]);
      const seen = outputUntil(debug, /debug-ok\n[^\n]*\ndone/, 120_000);
      // kubectl has attached once it says how to get a prompt; a line sent before could go nowhere.
      await outputUntil(debug, "If you don't see a command prompt", 120_000);
      debug.stdin?.write('ok\n');
      output[side] = await seen;
      debug.stdin?.end();
      debug.kill();
    }
    // PID 1 of the target container is visible: the runtime shared its process namespace.
    expect(output.remote).toContain('debug-ok\nsleep 3600 \ndone');
    expect(output.host).toContain('debug-ok\nsleep 3600 \ndone');
    const status = await waitFor('the debugger’s status on the host', async () => {
      const pod = await env.readPod('host', 'debuggee');
      const container = pod.status?.ephemeralContainerStatuses?.find((c) => c.name === 'debugger');
      return container?.state?.terminated ? container : undefined;
    });
    expect(status.state?.terminated?.exitCode).toBe(0);
    const delegate = await env.readPod('remote', 'debuggee');
    expect(delegate.spec?.ephemeralContainers?.map((c) => c.name)).toEqual(['debugger']);
    const logs = {
      host: (await env.kubectl('host', ['logs', 'debuggee', '-c', 'debugger'])).stdout,
      remote: (await env.kubectl('remote', ['logs', 'debuggee-ref', '-c', 'debugger'])).stdout,
    };
    expect(logs.host).toBe('debug-ok\nsleep 3600 \ndone\n');
    expect(logs.host).toBe(logs.remote);
  });

  it('lets kubectl attach to an ephemeral container', async () => {
    await env.kubectl('host', [
      'debug',
      'debuggee',
      `--image=${BUSYBOX}`,
      '-c',
      'watcher',
      '-i',
      '--attach=false',
      '--',
      'sh',
      '-c',
      'while read -r line; do echo "watcher got $line"; done',
    ]);
    await waitFor(
      'the watcher running on the host',
      async () => {
        const pod = await env.readPod('host', 'debuggee');
        return pod.status?.ephemeralContainerStatuses?.find((c) => c.name === 'watcher')?.state?.running
          ? true
          : undefined;
      },
      { timeoutMs: 120_000 },
    );
    const attach = env.spawnKubectl('host', ['attach', '-i', 'debuggee', '-c', 'watcher']);
    const output = outputUntil(attach, 'watcher got hello');
    attach.stdin?.write('hello\n');
    expect(await output).toContain('watcher got hello');
    attach.stdin?.end();
    attach.kill();
  });
});

describe('in-place resize on a real container', { tags: ['real-node'] }, () => {
  const resize = (side: Side, cpu: string, limit: string) =>
    env.kubectl(side, [
      'patch',
      'pod',
      target(side, 'sized'),
      '--subresource',
      'resize',
      '-p',
      JSON.stringify({
        spec: { containers: [{ name: 'main', resources: { requests: { cpu }, limits: { cpu: limit } } }] },
      }),
    ]);
  const main = (pod: V1Pod) => pod.status?.containerStatuses?.find((c) => c.name === 'main');
  const pending = (pod: V1Pod) => pod.status?.conditions?.find((c) => c.type === 'PodResizePending');
  const millis = (cpu: string | undefined) => Number(parseQuantity(cpu ?? '0') / 1_000_000n);
  /**
   * The virtual node's cpu follows the reference pod, another tenant of the remote, as the scheduler
   * counts it: the real node's allocatable minus what that pod holds (`referenceCpu`) and what every
   * other pod that is not one of this node's delegates requests.
   */
  const accountsFor = async (referenceCpu: number) => {
    const node = (await env.remote.core.listNode()).items[0];
    const others = (await env.remote.core.listPodForAllNamespaces()).items
      .filter((p) => p.metadata?.labels?.[LABEL_VIRTUAL_NODE] !== env.nodeName)
      .filter(
        (p) => p.metadata?.name !== 'sized-ref' && !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''),
      )
      .flatMap((p) => p.spec?.containers ?? [])
      .reduce((sum, c) => sum + millis(c.resources?.requests?.cpu), 0);
    const expected = millis(node?.status?.allocatable?.cpu) - others - referenceCpu;
    await waitFor(`the virtual node's cpu ${expected}m`, async () => {
      const virtual = await env.host.core.readNode({ name: env.nodeName });
      return millis(virtual.status?.allocatable?.cpu) === expected ? true : undefined;
    });
  };
  const settled = (side: Side, what: string, check: (pod: V1Pod) => boolean) =>
    waitFor(
      `${side} ${target(side, 'sized')} ${what}`,
      async () => {
        const pod = await env.readPod(side, target(side, 'sized'));
        return check(pod) ? pod : undefined;
      },
      { timeoutMs: 120_000 },
    );

  it('is applied by the remote kubelet, with the allocated and actual resources back on the host', async () => {
    await resize('host', '150m', '300m');
    await resize('remote', '150m', '300m');
    const applied = (pod: V1Pod) =>
      main(pod)?.resources?.limits?.cpu === '300m' &&
      !pod.status?.conditions?.some((c) => c.type.startsWith('PodResize'));
    const host = await settled('host', 'resized', applied);
    const reference = await settled('remote', 'resized', applied);
    expect(main(host)?.allocatedResources).toEqual({ cpu: '150m', memory: '32Mi' });
    expect(main(host)?.allocatedResources).toEqual(main(reference)?.allocatedResources);
    expect(main(host)?.resources).toEqual(main(reference)?.resources);
    expect(main(host)?.restartCount).toBe(0);
    expect(host.status?.observedGeneration).toBe(host.metadata?.generation);
    // The delegate really runs with it: the container's cgroup has the new CPU quota (300m of 100 ms).
    const quota = async (side: Side) =>
      (
        await env.kubectl(side, [
          'exec',
          target(side, 'sized'),
          '--',
          'sh',
          '-c',
          'cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us',
        ])
      ).stdout;
    expect(await quota('host')).toMatch(/^30000\b/);
    expect(await quota('host')).toBe(await quota('remote'));
    await accountsFor(150);
  });

  it('says when the remote’s node has no room yet: PodResizePending, Deferred, as on the remote', async () => {
    // 1500m fits the node's allocatable (2 CPUs; the API servers check that much) but not beside the
    // ballast and the other pod, so the real kubelet defers the resize and keeps what was allocated.
    await resize('host', '1500m', '1800m');
    const host = await settled('host', 'resize pending', (pod) => pending(pod) !== undefined);
    await resize('remote', '1500m', '1800m');
    const reference = await settled('remote', 'resize pending', (pod) => pending(pod) !== undefined);
    expect(pending(host)?.reason).toBe('Deferred');
    expect(pending(host)?.reason).toBe(pending(reference)?.reason);
    expect(main(host)?.allocatedResources?.cpu).toBe('150m');
    expect(main(host)?.resources?.limits?.cpu).toBe('300m');
    const hostPod = await env.readPod('host', 'sized');
    expect(hostPod.spec?.containers[0]?.resources?.requests?.cpu).toBe('1500m');
    // The reference's deferred resize counts what it asks (the larger of asked and allocated).
    await accountsFor(1500);
  });
});
