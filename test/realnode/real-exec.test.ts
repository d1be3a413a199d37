// kubectl exec, attach, cp and port-forward on real containers, through the host and its virtual
// node, each compared with the same command run directly against the remote (the reference).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusters } from '../cluster/fixture.ts';
import {
  AGNHOST,
  BUSYBOX,
  kubeconfigOf,
  outputUntil,
  type RealNodeEnv,
  realNodeEnv,
  SIDES,
} from './support.ts';

let env: RealNodeEnv;
let workDir: string;

beforeAll(async () => {
  env = await realNodeEnv('rexec');
  workDir = await mkdtemp(join(tmpdir(), 'real-exec-'));
  await env.host.core.createNamespacedConfigMap({
    namespace: env.namespace,
    body: { metadata: { name: 'settings' }, data: { GREETING: 'hello from a ConfigMap', 'data-1': 'kept' } },
  });
  await env.host.core.createNamespacedSecret({
    namespace: env.namespace,
    body: { metadata: { name: 'credentials' }, stringData: { password: 's3cr3t' } },
  });
  await env.createPod('shell', {
    containers: [
      {
        name: 'main',
        image: BUSYBOX,
        command: ['sleep', '3600'],
        envFrom: [{ configMapRef: { name: 'settings' } }],
        env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'credentials', key: 'password' } } }],
      },
    ],
  });
  await env.createPod('echoer', {
    containers: [
      {
        name: 'main',
        image: BUSYBOX,
        stdin: true,
        command: ['sh', '-c', 'echo ready; while read -r line; do echo "got $line"; done'],
      },
    ],
  });
  await env.createPod('web', {
    containers: [
      {
        name: 'main',
        image: AGNHOST,
        args: ['netexec', '--http-port=8080'],
        ports: [{ containerPort: 8080 }],
        readinessProbe: { httpGet: { path: '/hostname', port: 8080 }, periodSeconds: 2 },
      },
    ],
  });
  for (const pod of ['shell', 'echoer', 'web']) await env.waitReady(pod);
});

afterAll(async () => {
  await env?.cleanup();
});

describe('kubectl exec on a real container', { tags: ['real-node'] }, () => {
  it('runs in the container: its own processes, its own /proc/1', async () => {
    const { host, remote } = await env.both(['exec', 'shell', '--', 'cat', '/proc/1/cmdline']);
    expect(host.stdout).toBe('sleep\u00003600\u0000');
    expect(host).toEqual(remote);
    const ps = await env.both(['exec', 'shell', '--', 'ps', '-o', 'pid,args']);
    expect(ps.host.stdout).toMatch(/^\s*1 sleep 3600$/m);
    expect(ps.host.exitCode).toBe(0);
    expect(ps.remote.stdout).toMatch(/^\s*1 sleep 3600$/m);
  });

  it('passes stdin through to its end: the command sees EOF and exits', async () => {
    const { host, remote } = await env.both(['exec', '-i', 'shell', '--', 'cat'], {
      input: 'a\nb\n',
      timeoutMs: 60_000,
    });
    expect(host).toMatchObject({ stdout: 'a\nb\n', exitCode: 0 });
    expect(host).toEqual(remote);
    const counted = await env.both(['exec', '-i', 'shell', '--', 'wc', '-l'], { input: '1\n2\n3\n' });
    expect(counted.host.stdout.trim()).toBe('3');
    expect(counted.host).toEqual(counted.remote);
  });

  it('returns the command’s exit code and keeps stdout and stderr apart', async () => {
    const { host, remote } = await env.both([
      'exec',
      'shell',
      '--',
      'sh',
      '-c',
      'echo out; echo err >&2; exit 42',
    ]);
    expect(host.exitCode).toBe(42);
    expect(host.stdout).toBe('out\n');
    expect(host.stderr).toContain('err\n');
    expect(host).toEqual(remote);
    const missing = await env.both(['exec', 'shell', '--', 'no-such-command']);
    expect(missing.host.exitCode).not.toBe(0);
    expect(missing.host.exitCode).toBe(missing.remote.exitCode);
  });

  it('sees the environment from the ConfigMap and the Secret (reflected into the remote)', async () => {
    const script = 'echo "$GREETING|$PASSWORD"; env | grep -c "^data-1=kept$"';
    const { host, remote } = await env.both(['exec', 'shell', '--', 'sh', '-c', script]);
    expect(host.stdout).toBe('hello from a ConfigMap|s3cr3t\n1\n');
    expect(host).toEqual(remote);
  });

  it('runs a terminal with -t, sized by the client’s terminal, and follows its resize', async () => {
    // `script` gives kubectl a terminal of 45×123; 3 s later it becomes 30×100 (kubectl sees SIGWINCH
    // and sends the new size). The container's terminal gets its first size a moment after the
    // command starts (directly against the remote too), so the command polls `stty size`.
    const remoteCommand =
      'first=; for i in $(seq 150); do s=$(stty size 2>/dev/null); ' +
      'case "$s" in "30 100") echo "resized to $s"; break;; esac; ' +
      'if [ -z "$first" ] && [ -n "$s" ] && [ "$s" != "0 0" ]; then first=$s; echo "first $s"; fi; sleep 0.1; done; tty';
    const outputs: Record<string, string> = {};
    for (const side of SIDES) {
      const kubectl = `${clusters.kubectlBinary} --kubeconfig=${kubeconfigOf(env, side)} -n ${env.namespace}`;
      const command = `stty cols 123 rows 45; (sleep 3; stty cols 100 rows 30 </dev/tty) & ${kubectl} exec -it shell -- sh -c '${remoteCommand}'`;
      outputs[side] = await new Promise<string>((resolve, reject) => {
        const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
          stdio: ['pipe', 'pipe', 'pipe'],
        });
        let text = '';
        child.stdout.on('data', (chunk) => (text += chunk));
        child.on('error', reject);
        child.on('exit', () => resolve(text.replace(/\r/g, '').replace(/^\0+/, '')));
        setTimeout(() => child.kill(), 40_000);
      });
    }
    expect(outputs.host).toMatch(/first 45 123\nresized to 30 100\n\/dev\/pts\/\d+\n/);
    expect(outputs.remote).toMatch(/first 45 123\nresized to 30 100\n\/dev\/pts\/\d+\n/);
  });
});

describe('kubectl attach on a real container', { tags: ['real-node'] }, () => {
  it('writes to the container’s stdin and reads what it prints', async () => {
    for (const side of SIDES) {
      const attach = env.spawnKubectl(side, ['attach', '-i', 'echoer']);
      try {
        const seen = outputUntil(attach, `got from-${side}`);
        // The attach is in place once kubectl says so; what is typed before may arrive first.
        await new Promise((resolve) => setTimeout(resolve, 2000));
        attach.stdin?.write(`from-${side}\n`);
        expect(await seen).toContain(`got from-${side}`);
      } finally {
        attach.kill('SIGINT');
      }
    }
  });
});

describe('kubectl cp with a real container', { tags: ['real-node'] }, () => {
  it('copies a file into the container and back out, unchanged', async () => {
    const original = join(workDir, 'original.txt');
    const content = `${'spillway real node\n'.repeat(2000)}end\n`;
    await writeFile(original, content);
    for (const side of SIDES) {
      const into = await env.kubectl(side, [
        'cp',
        original,
        `${env.namespace}/shell:/tmp/copied-${side}.txt`,
      ]);
      expect(into.exitCode).toBe(0);
      const inside = await env.kubectl(side, ['exec', 'shell', '--', 'md5sum', `/tmp/copied-${side}.txt`]);
      expect(inside.stdout.split(' ')[0]).toMatch(/^[0-9a-f]{32}$/);
      const back = join(workDir, `back-${side}.txt`);
      const out = await env.kubectl(side, ['cp', `${env.namespace}/shell:/tmp/copied-${side}.txt`, back]);
      expect(out.exitCode).toBe(0);
      expect(await readFile(back, 'utf8')).toBe(content);
    }
  });
});

async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(20_000) });
  return { status: response.status, body: await response.text() };
}

describe('kubectl port-forward to agnhost netexec', { tags: ['real-node'] }, () => {
  it('carries HTTP requests to the pod and back', async () => {
    const answers: Record<string, { status: number; body: string }[]> = {};
    for (const side of SIDES) {
      const forward = env.spawnKubectl(side, ['port-forward', 'pod/web', ':8080']);
      try {
        const output = await outputUntil(forward, /Forwarding from 127\.0\.0\.1:(\d+)/);
        const port = Number(/Forwarding from 127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
        answers[side] = [
          await httpGet(port, '/hostname'),
          await httpGet(port, '/echo?msg=through-the-tunnel'),
          await httpGet(port, '/hostname'),
        ];
      } finally {
        forward.kill('SIGINT');
      }
    }
    expect(answers.host).toEqual([
      { status: 200, body: 'web' },
      { status: 200, body: 'through-the-tunnel' },
      { status: 200, body: 'web' },
    ]);
    expect(answers.host).toEqual(answers.remote);
  });
});
