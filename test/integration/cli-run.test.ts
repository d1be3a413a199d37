// `spillway run` as a user runs it: a bad configuration fails at once with a message naming the field;
// SIGTERM stops it cleanly and leaves the node to expire.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clusters } from '../cluster/fixture.ts';
import { condition, kube, uniqueSuffix } from '../support/kube.ts';
import { writeConfig } from '../support/spillway.ts';
import { waitFor } from '../support/wait.ts';

const main = join(import.meta.dirname, '..', '..', 'src', 'main.ts');
const host = kube(clusters.host.kubeconfig);

function runSpillway(args: string[]): {
  child: ChildProcess;
  exited: Promise<{ code: number | null; output: string }>;
} {
  const child = spawn(process.execPath, [main, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; output: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, output })),
  );
  return { child, exited };
}

describe('spillway run', () => {
  it('fails fast on a missing kubeconfig, naming the field', async () => {
    const config = await writeConfig({
      hostKubeconfig: clusters.host.kubeconfig,
      remotes: [{ name: 'nowhere', kubeconfig: '/nonexistent/remote.kubeconfig' }],
    });
    const { code, output } = await runSpillway(['--config', config]).exited;
    expect(code).toBe(2);
    expect(output).toContain('remotes[0].kubeconfig: file not found: /nonexistent/remote.kubeconfig');
  });

  it('fails fast on a kubeconfig with a malformed server URL', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spillway-bad-url-'));
    const kubeconfig = join(dir, 'kubeconfig');
    const original = await readFile(clusters.remote.kubeconfig, 'utf8');
    await writeFile(kubeconfig, original.replace(/server: \S+/, 'server: "https//missing-colon"'));
    const config = await writeConfig({
      hostKubeconfig: clusters.host.kubeconfig,
      remotes: [{ name: 'bad', kubeconfig }],
    });
    const { code, output } = await runSpillway(['--config', config]).exited;
    expect(code).toBe(2);
    expect(output).toMatch(/remotes\[0\]\.kubeconfig: cluster "remote" has a malformed server URL/);
  });

  it('rejects a bad value given as a flag, naming the field', async () => {
    const { code, output } = await runSpillway([
      '--host-kubeconfig',
      '/nonexistent/host',
      '--kubelet-port',
      '99999',
    ]).exited;
    expect(code).toBe(2);
    expect(output).toContain('kubelet.port');
  });

  it('stops cleanly on SIGTERM and leaves its node to expire', async () => {
    const suffix = uniqueSuffix();
    const nodeName = `spillway-cli-${suffix}`;
    const config = await writeConfig({
      hostKubeconfig: clusters.host.kubeconfig,
      remotes: [{ name: `cli-${suffix}`, kubeconfig: clusters.remote.kubeconfig, nodeName }],
    });
    const { child, exited } = runSpillway(['--config', config, '--log-level', 'info']);
    try {
      await waitFor('node Ready', async () => {
        const node = await host.core.readNode({ name: nodeName }).catch(() => undefined);
        return condition(node, 'Ready')?.status === 'True' ? true : undefined;
      });
      child.kill('SIGTERM');
      const { code, output } = await exited;
      // 0, not the 1 of the forced exit that a shutdown stuck for 20 s would take.
      expect(code).toBe(0);
      expect(output).toContain('"msg":"stopped"');
      const node = await host.core.readNode({ name: nodeName });
      expect(node.metadata?.name).toBe(nodeName);
    } finally {
      child.kill('SIGKILL');
      await host.core.deleteNode({ name: nodeName }).catch(() => {});
    }
  });
});
