import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { kubeConfigFromFile, kubeConfigFromString } from '../../src/kube/kubeconfig.ts';

let dir: string;
const b64 = (text: string) => Buffer.from(text).toString('base64');

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:6443', ...cluster } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spillway-kubeconfig-'));
  await writeFile(join(dir, 'ca.crt'), 'CA FROM FILE');
  await writeFile(join(dir, 'token'), 'first-token\n');
});

describe('kubeconfigs parsed without client-node', () => {
  it('reads embedded data, and files relative to the kubeconfig, again each time', async () => {
    const path = join(dir, 'files.kubeconfig');
    await writeFile(
      path,
      kubeconfig(
        { 'certificate-authority': 'ca.crt', 'tls-server-name': 'api.internal' },
        { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') },
      ),
    );
    const config = kubeConfigFromFile(path, 'host.kubeconfig');
    expect(config.getCurrentCluster()).toMatchObject({
      name: 'c',
      server: 'https://127.0.0.1:6443',
      skipTLSVerify: false,
    });
    const tls = await config.tlsOptions();
    expect(tls.ca?.toString()).toBe('CA FROM FILE');
    expect(tls.cert?.toString()).toBe('CERT');
    expect(tls.key?.toString()).toBe('KEY');
    expect(tls.servername).toBe('api.internal');
    expect(tls.rejectUnauthorized).toBe(true);
    await writeFile(join(dir, 'ca.crt'), 'ROTATED CA');
    expect((await config.tlsOptions()).ca?.toString()).toBe('ROTATED CA');
    expect(await config.authorization()).toBeUndefined();
  });

  it('takes bearer tokens inline or from a token file (read again after the server refused it)', async () => {
    const inline = kubeConfigFromString(kubeconfig({}, { token: 'abc' }), 'f');
    expect(await inline.authorization()).toBe('Bearer abc');
    const path = join(dir, 'tokenfile.kubeconfig');
    await writeFile(path, kubeconfig({}, { tokenFile: 'token' }));
    const config = kubeConfigFromFile(path, 'f');
    expect(await config.authorization()).toBe('Bearer first-token');
    await writeFile(join(dir, 'token'), 'second-token');
    expect(await config.authorization()).toBe('Bearer first-token'); // cached for a minute
    config.invalidate();
    expect(await config.authorization()).toBe('Bearer second-token');
  });

  it('runs exec credential plugins, caching the credential until it expires', async () => {
    const counter = join(dir, 'exec-count');
    const plugin = join(dir, 'plugin.sh');
    await writeFile(
      plugin,
      `#!/bin/sh\necho x >> "${counter}"\necho "$KUBERNETES_EXEC_INFO" > "${dir}/exec-info"\n` +
        `echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-plugin","expirationTimestamp":"2999-01-01T00:00:00Z"}}'\n`,
    );
    await chmod(plugin, 0o755);
    const path = join(dir, 'exec.kubeconfig');
    await writeFile(
      path,
      kubeconfig(
        {},
        {
          exec: {
            apiVersion: 'client.authentication.k8s.io/v1',
            command: './plugin.sh',
            provideClusterInfo: true,
          },
        },
      ),
    );
    const config = kubeConfigFromFile(path, 'f');
    expect(await config.authorization()).toBe('Bearer from-plugin');
    expect(await config.authorization()).toBe('Bearer from-plugin');
    expect((await readFile(counter, 'utf8')).trim().split('\n')).toHaveLength(1);
    const info = JSON.parse(await readFile(join(dir, 'exec-info'), 'utf8'));
    expect(info).toMatchObject({
      kind: 'ExecCredential',
      spec: { interactive: false, cluster: { server: 'https://127.0.0.1:6443' } },
    });
  });

  it('names the problem: no context, a bad server, plain http, auth-provider, files or exec from a Secret', () => {
    const cases: [string, string][] = [
      [stringify({ apiVersion: 'v1', kind: 'Config' }), 'kubeconfig has no current context or cluster'],
      [kubeconfig({ server: '::not a url' }, {}), 'cluster "c" has a malformed server URL'],
      [kubeconfig({ server: 'http://127.0.0.1:8080' }, {}), 'must be an https:// URL'],
      [kubeconfig({}, { 'auth-provider': { name: 'gcp' } }), 'auth-provider is not supported'],
      [
        kubeconfig({ 'certificate-authority': '/etc/ca.crt' }, {}),
        'refers to a file; embed it as certificate-authority-data',
      ],
      [kubeconfig({}, { exec: { command: 'aws' } }), 'exec credential plugins are not allowed here'],
      ['{ not yaml: [', 'cannot parse kubeconfig'],
    ];
    for (const [content, message] of cases) {
      expect(() => kubeConfigFromString(content, 'remotes[0].secretRef')).toThrow(message);
      expect(() => kubeConfigFromString(content, 'remotes[0].secretRef')).toThrow(
        /^remotes\[0\]\.secretRef: /,
      );
    }
    expect(
      kubeConfigFromString(
        kubeconfig({ server: 'http://127.0.0.1:8080', 'insecure-skip-tls-verify': true }, {}),
        'f',
      ).getCurrentCluster().skipTLSVerify,
    ).toBe(true);
  });

  it('switches to another context when asked, checking it only then', () => {
    const content = stringify({
      clusters: [
        { name: 'a', cluster: { server: 'https://a:1' } },
        { name: 'b', cluster: { server: 'https://b:2', 'certificate-authority-data': b64('CA-B') } },
        { name: 'broken', cluster: { server: 'nope' } },
      ],
      users: [{ name: 'ub', user: { token: 'tb' } }],
      contexts: [
        { name: 'ca', context: { cluster: 'a' } },
        { name: 'cb', context: { cluster: 'b', user: 'ub' } },
        { name: 'cbroken', context: { cluster: 'broken' } },
      ],
      'current-context': 'ca',
    });
    const config = kubeConfigFromString(content, '--kubeconfig');
    expect(config.getContextObject('cb')).toEqual({ name: 'cb' });
    expect(config.getContextObject('nope')).toBeUndefined();
    config.setCurrentContext('cb');
    expect(config.getCurrentCluster()).toMatchObject({ server: 'https://b:2', caData: b64('CA-B') });
    expect(config.getCurrentUser().token).toBe('tb');
    expect(() => config.setCurrentContext('cbroken')).toThrow('cluster "broken" has a malformed server URL');
  });

  it('uses the only cluster of a kubeconfig without contexts', () => {
    const config = kubeConfigFromString(
      stringify({ clusters: [{ name: 'x', cluster: { server: 'https://h:1' } }] }),
      'f',
    );
    expect(config.getCurrentCluster().server).toBe('https://h:1');
  });
});
