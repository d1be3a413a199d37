import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { credentialKubeconfig } from '../../src/join/credential.ts';
import { formatDuration, parseDuration } from '../../src/join/duration.ts';
import { defaultRemoteNamespace, remoteClusterRole, remoteIdentity } from '../../src/join/identity.ts';
import { credentialExpiry, tokenExpiry } from '../../src/kube/token.ts';

const root = join(import.meta.dirname, '..', '..');

describe('durations', () => {
  it.each([
    ['720h', 720 * 3600],
    ['90m', 5400],
    ['1h30m', 5400],
    ['30d', 30 * 86400],
    ['45s', 45],
  ])('parses %s', (text, seconds) => expect(parseDuration(text)).toBe(seconds));

  it.each(['', '10', 'h', '1x', '1h 30m', '-1h'])('refuses %j', (text) => {
    expect(() => parseDuration(text)).toThrow(/not a duration/);
  });

  it.each([
    [30 * 86400, '30d'],
    [30 * 86400 - 5, '30d'],
    [29 * 86400 + 23 * 3600, '29d23h'],
    [5400, '1h30m'],
    [90, '90s'],
  ])('formats %i s as %s', (seconds, text) => expect(formatDuration(seconds)).toBe(text));
});

describe('the remote identity join creates', () => {
  it('has exactly the rules of manifests/remote', () => {
    const documents = parseAllDocuments(readFileSync(join(root, 'manifests/remote/rbac.yaml'), 'utf8')).map(
      (d) => d.toJSON(),
    );
    const role = documents.find((d) => d.kind === 'ClusterRole');
    const identity = remoteIdentity('east', 'spillway-system');
    const applied = identity.objects.find((o) => o.kind === 'ClusterRole') as unknown as { rules: unknown };
    expect(applied.rules).toEqual(role.rules);
    expect(remoteClusterRole().rules).toEqual(role.rules);
  });

  it('is one ServiceAccount and binding per host cluster, in the namespace of manifests/remote', () => {
    expect(defaultRemoteNamespace()).toBe(
      parse(readFileSync(join(root, 'manifests/remote/kustomization.yaml'), 'utf8')).namespace,
    );
    const east = remoteIdentity('east', 'spillway-system');
    const west = remoteIdentity('west', 'spillway-system');
    expect(east.serviceAccount).not.toBe(west.serviceAccount);
    expect(east.binding).not.toBe(west.binding);
    expect(east.clusterRole).toBe(west.clusterRole);
    const binding = east.objects.find((o) => o.kind === 'ClusterRoleBinding') as unknown as {
      subjects: { name: string; namespace: string }[];
    };
    expect(binding.subjects).toEqual([
      { kind: 'ServiceAccount', name: east.serviceAccount, namespace: 'spillway-system' },
    ]);
  });
});

function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256' })}.${part(claims)}.signature`;
}

describe('credentials', () => {
  it('reads the expiry of a ServiceAccount token, and none of anything else', () => {
    expect(tokenExpiry(jwt({ exp: 1_900_000_000 }))?.toISOString()).toBe(
      new Date(1_900_000_000_000).toISOString(),
    );
    expect(tokenExpiry(jwt({ sub: 'x' }))).toBeUndefined();
    expect(tokenExpiry('not-a-jwt')).toBeUndefined();
    expect(tokenExpiry('a.%%%.c')).toBeUndefined();
    expect(tokenExpiry(undefined)).toBeUndefined();
  });

  it("builds a self-contained kubeconfig with the admin kubeconfig's server and CA and the token", () => {
    const admin = new KubeConfig();
    admin.loadFromOptions({
      clusters: [{ name: 'r', server: 'https://127.0.0.1:6443', caData: 'Q0E=', skipTLSVerify: false }],
      users: [{ name: 'admin', token: 'admin-token' }],
      contexts: [{ name: 'r', cluster: 'r', user: 'admin' }],
      currentContext: 'r',
    });
    const token = jwt({ exp: 1_900_000_000 });
    const built = new KubeConfig();
    built.loadFromString(credentialKubeconfig(admin, token, 'eu'));
    expect(built.getCurrentCluster()).toMatchObject({ server: 'https://127.0.0.1:6443', caData: 'Q0E=' });
    expect(built.getCurrentUser()?.token).toBe(token);
    expect(credentialExpiry(built)?.getTime()).toBe(1_900_000_000_000);
    const elsewhere = new KubeConfig();
    elsewhere.loadFromString(credentialKubeconfig(admin, token, 'eu', 'https://127.0.0.1:7443'));
    expect(elsewhere.getCurrentCluster()?.server).toBe('https://127.0.0.1:7443');
  });
});
