// kubectl logs, exec and attach on pods that run in the remote cluster, through the host API server,
// which calls Spillway's kubelet API (over SPDY for exec and attach) as it calls any kubelet.
import { spawn } from 'node:child_process';
import { appendFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Spillway } from '../../src/app.ts';
import { clusters } from '../cluster/fixture.ts';
import {
  createKubeletTestNamespace,
  kubeletTestNames,
  removeKubeletTestNamespace,
  runPods,
} from '../support/kubelet-fixture.ts';
import { criLine, type KwokFixture } from '../support/kwok.ts';
import { startSpillway } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';

const test = kubeletTestNames('streams');
const { namespace } = test;
const old = new Date(Date.now() - 3 * 3600_000);
let spillway: Spillway;
let kwok: KwokFixture;
let pod: string;

const kubectl = (args: string[], options?: Parameters<typeof clusters.kubectl>[2]) =>
  clusters.kubectl('host', ['-n', namespace, ...args], options);

beforeAll(async () => {
  kwok = await createKubeletTestNamespace(test, {
    logs:
      criLine(old, 'stdout', 'an old line') +
      criLine(new Date(), 'stdout', 'a recent line') +
      criLine(new Date(), 'stderr', 'to stderr'),
    previousLogs: criLine(old, 'stdout', 'from the previous container'),
  });
  spillway = await startSpillway({
    hostKubeconfig: clusters.host.kubeconfig,
    remotes: [test.remoteConfig],
  });
  pod = 'app';
  await runPods(test, [pod], 'streams');
});

afterAll(async () => {
  await removeKubeletTestNamespace(test, () => spillway?.stop());
});

describe('kubectl logs', () => {
  it('returns the log, with --tail, --since, --timestamps, --limit-bytes and -p', async () => {
    expect((await kubectl(['logs', pod])).stdout).toBe('an old line\na recent line\nto stderr\n');
    expect((await kubectl(['logs', pod, '--tail=1'])).stdout).toBe('to stderr\n');
    expect((await kubectl(['logs', pod, '--since=1h'])).stdout).toBe('a recent line\nto stderr\n');
    expect((await kubectl(['logs', pod, '--limit-bytes=6'])).stdout).toBe('an old');
    const stamped = (await kubectl(['logs', pod, '--timestamps', '--tail=1'])).stdout;
    expect(stamped).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z to stderr\n$/);
    expect((await kubectl(['logs', pod, '-p'])).stdout).toBe('from the previous container\n');
  });

  it('follows the log with -f until kubectl stops', async () => {
    const follower = spawn(
      clusters.kubectlBinary,
      [`--kubeconfig=${clusters.host.kubeconfig}`, '-n', namespace, 'logs', '-f', '--tail=0', pod],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    follower.stdout.on('data', (chunk) => (output += chunk));
    try {
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await appendFile(kwok.logFile, criLine(new Date(), 'stdout', 'written while following'));
      await waitFor('followed line', () => (output.includes('written while following') ? true : undefined), {
        timeoutMs: 20_000,
      });
      expect(output).not.toContain('an old line');
    } finally {
      follower.kill('SIGINT');
    }
  });

  it('answers a bad parameter with a clear error', async () => {
    const result = await kubectl(
      ['get', '--raw', `/api/v1/namespaces/${namespace}/pods/${pod}/log?tailLines=-1`],
      {
        allowFailure: true,
      },
    );
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(/tailLines/);
  });
});

describe('kubectl exec', () => {
  it('prints the output and exits with the command’s exit code', async () => {
    expect((await kubectl(['exec', pod, '--', 'echo', 'hi'])).stdout).toBe('hi\n');
    const split = await kubectl(['exec', pod, '--', 'sh', '-c', 'echo out; echo err >&2']);
    expect(split.stdout).toBe('out\n');
    expect(split.stderr).toBe('err\n');
    const failed = await kubectl(['exec', pod, '--', 'sh', '-c', 'exit 3'], { allowFailure: true });
    expect(failed.exitCode).toBe(3);
  });

  it('passes piped stdin with -i', async () => {
    const result = await kubectl(['exec', '-i', pod, '--', 'head', '-n', '2'], {
      input: 'first\nsecond\nthird\n',
    });
    expect(result.stdout).toBe('first\nsecond\n');
  });

  it('runs a terminal with -t, sized from the client’s terminal (a resize)', async () => {
    // `script` gives kubectl a pseudo-terminal of a known size. The size travels on its own channel,
    // alongside the command's start, as with any kubelet: the remote command waits until the
    // terminal has a size (at most 5 s) instead of racing it. KWOK sometimes drops a terminal's last
    // output when the command exits at once (1 in 20, straight to the remote too): it lingers briefly.
    const remoteCommand =
      'for i in $(seq 50); do s=$(stty size); [ "$s" != "0 0" ] && break; sleep 0.1; done; echo "$s"; sleep 0.3';
    const command = `stty cols 123 rows 45; ${clusters.kubectlBinary} --kubeconfig=${clusters.host.kubeconfig} -n ${namespace} exec -it ${pod} -- sh -c '${remoteCommand}'`;
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout.on('data', (chunk) => (text += chunk));
      child.on('error', reject);
      child.on('exit', () => resolve(text));
      setTimeout(() => child.stdin.end(), 8000);
    });
    expect(output).toContain('45 123');
  });

  it('runs 1000 times in a row with 10 workers, all succeeding', async () => {
    let next = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < 1000) {
          const i = next++;
          const result = await kubectl(['exec', pod, '--', 'echo', `run-${i}`], {
            allowFailure: true,
            timeoutMs: 30_000,
          });
          if (result.exitCode !== 0 || result.stdout !== `run-${i}\n`)
            failures.push(`${i}: ${result.exitCode} ${result.stderr}`);
        }
      }),
    );
    expect(failures).toEqual([]);
  }, 600_000);
});

describe('kubectl attach', () => {
  it('attaches to the running container’s output', async () => {
    const attach = spawn(
      clusters.kubectlBinary,
      [`--kubeconfig=${clusters.host.kubeconfig}`, '-n', namespace, 'attach', pod],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    attach.stdout.on('data', (chunk) => (output += chunk));
    try {
      // kwok attaches like `tail -f`: what the container writes from now on. When the session is up
      // is not known from outside (a loaded machine takes seconds), so the container keeps writing.
      await waitFor(
        'attached output',
        async () => {
          if (output.includes('attached output')) return true;
          await appendFile(kwok.attachFile, criLine(new Date(), 'stdout', 'attached output'));
          return undefined;
        },
        { timeoutMs: 30_000, intervalMs: 1000 },
      );
    } finally {
      attach.kill('SIGINT');
    }
  });
});
