// kubectl logs of real containers (the kubelet's CRI log files), through the host and its virtual
// node, each compared with the same command run directly against the remote (the reference).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/wait.ts';
import {
  BUSYBOX,
  containerStatus,
  crashesOnce,
  outputUntil,
  type RealNodeEnv,
  realNodeEnv,
  SIDES,
} from './support.ts';

let env: RealNodeEnv;

// Prints two lines, then whatever an exec leaves in /tmp/say, line by line, for as long as it runs.
const talker =
  'echo first line; echo second line; ' +
  'while true; do if [ -f /tmp/say ]; then cat /tmp/say; rm /tmp/say; fi; sleep 0.2; done';

beforeAll(async () => {
  env = await realNodeEnv('rlogs');
  await env.createPod('talker', {
    containers: [
      { name: 'main', image: BUSYBOX, command: ['sh', '-c', talker] },
      { name: 'sidecar', image: BUSYBOX, command: ['sh', '-c', 'echo from the sidecar >&2; sleep 3600'] },
    ],
  });
  await env.createPod('restarter', crashesOnce(3));
  await env.waitReady('talker');
});

afterAll(async () => {
  await env?.cleanup();
});

/** Makes the talker print a line and waits until its log (read directly) has it. */
async function say(text: string): Promise<void> {
  await env.kubectl('remote', [
    'exec',
    'talker',
    '-c',
    'main',
    '--',
    'sh',
    '-c',
    `echo '${text}' > /tmp/say`,
  ]);
  await waitFor(`"${text}" logged`, async () =>
    (await env.kubectl('remote', ['logs', 'talker', '-c', 'main'])).stdout.includes(text) ? true : undefined,
  );
}

describe('kubectl logs of a real container', { tags: ['real-node'] }, () => {
  it('returns the log, whole and with --tail, --timestamps and --limit-bytes', async () => {
    const whole = await env.both(['logs', 'talker', '-c', 'main']);
    expect(whole.host.stdout).toMatch(/^first line\nsecond line\n/);
    expect(whole.host).toEqual(whole.remote);
    for (const flags of [['--tail=1'], ['--timestamps'], ['--timestamps', '--tail=2'], ['--limit-bytes=7']]) {
      const { host, remote } = await env.both(['logs', 'talker', '-c', 'main', ...flags]);
      expect(host.exitCode).toBe(0);
      expect(host.stdout).toBe(remote.stdout);
    }
    expect((await env.kubectl('host', ['logs', 'talker', '-c', 'main', '--limit-bytes=7'])).stdout).toBe(
      'first l',
    );
    const stamped = (await env.kubectl('host', ['logs', 'talker', '-c', 'main', '--timestamps', '--tail=2']))
      .stdout;
    expect(stamped).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z first line\n\S+ second line\n$/);
  });

  it('returns only recent lines with --since', async () => {
    const stamped = (await env.kubectl('remote', ['logs', 'talker', '-c', 'main', '--timestamps'])).stdout;
    const firstAt = Date.parse(stamped.split(' ')[0] ?? '');
    // Old enough that half the age of the first lines leaves a wide margin on both sides.
    await waitFor('first lines 8 s old', () => (Date.now() - firstAt > 8000 ? true : undefined), {
      timeoutMs: 20_000,
    });
    await say('a recent line');
    const since = `--since=${Math.floor((Date.now() - firstAt) / 2000)}s`;
    const { host, remote } = await env.both(['logs', 'talker', '-c', 'main', since]);
    expect(host.stdout).toBe('a recent line\n');
    expect(host).toEqual(remote);
  });

  it('follows the log with -f', async () => {
    const followers = SIDES.map((side) =>
      env.spawnKubectl(side, ['logs', '-f', '--tail=0', 'talker', '-c', 'main']),
    );
    try {
      const seen = followers.map((follower) => outputUntil(follower, 'written while following'));
      await new Promise((resolve) => setTimeout(resolve, 2000));
      await say('written while following');
      const [host, remote] = await Promise.all(seen);
      expect(host).toBe('written while following\n');
      expect(remote).toBe(host);
    } finally {
      for (const follower of followers) follower.kill('SIGINT');
    }
  });

  it('reads each container of a multi-container pod, and all of them at once', async () => {
    const sidecar = await env.both(['logs', 'talker', '-c', 'sidecar']);
    expect(sidecar.host.stdout).toBe('from the sidecar\n');
    expect(sidecar.host).toEqual(sidecar.remote);
    const all = await env.both(['logs', 'talker', '--all-containers', '--prefix']);
    expect(all.host.stdout).toContain('[pod/talker/sidecar] from the sidecar');
    expect(all.host.stdout).toContain('[pod/talker/main] first line');
    // kubectl reads the containers concurrently: the order of their blocks varies between runs.
    const lines = (text: string) => text.split('\n').sort();
    expect(lines(all.host.stdout)).toEqual(lines(all.remote.stdout));
  });

  it('returns the previous container’s log after a real restart, with --previous', async () => {
    const pods = await env.waitBoth('restarted once', 'restarter', (pod) => {
      const status = containerStatus(pod, 'main');
      return (status?.restartCount ?? 0) >= 1 && status?.state?.running !== undefined;
    });
    expect(containerStatus(pods.host, 'main')?.lastState?.terminated?.exitCode).toBe(3);
    const previous = await env.both(['logs', 'restarter', '--previous']);
    expect(previous.host.stdout).toBe('run 0\n');
    expect(previous.host).toEqual(previous.remote);
    const current = await env.both(['logs', 'restarter']);
    expect(current.host.stdout).toBe('run 1\n');
    expect(current.host).toEqual(current.remote);
  });
});
