// Installing Spillway as an operator does: `kubectl apply -k manifests/base` on the host (every object
// created for real), then Spillway run as its pods would run it: two replicas with the configuration
// from the ConfigMap, the Deployment's arguments and environment, and nothing but a token of the
// ServiceAccount the manifests create, found where a pod finds it (KUBERNETES_SERVICE_HOST/PORT and a
// token/CA/namespace directory). No image can run here, so the image's runtime stage is laid out in a
// temporary directory (a build of dist/, package.json, manifests, node_modules) and run on loopback. Then the day-2 commands: `spillway join`, `status`, `join --rotate` and `leave`.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AdmissionregistrationV1Api,
  AppsV1Api,
  RbacAuthorizationV1Api,
  type V1Pod,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { clusters } from '../cluster/fixture.ts';
import { freePorts } from '../cluster/ports.ts';
import { condition, kube, uniqueSuffix } from '../support/kube.ts';
import { type SpillwayProcess, spawnSpillway, spillwayCommand } from '../support/process.ts';
import { waitFor } from '../support/wait.ts';
import { delegatesCollected, pinnedSpec } from '../support/workloads.ts';

const root = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const suffix = uniqueSuffix();
const remoteName = `install-${suffix}`;
const nodeName = `spillway-${remoteName}`;
const remoteNamespace = `spillway-install-${suffix}`;
const workloads = `install-${suffix}`;
const system = 'spillway-system';
const host = kube(clusters.host.kubeconfig);
const remote = kube(clusters.remote.kubeconfig);
const apps = host.kubeConfig.makeApiClient(AppsV1Api);
const hostRbac = host.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
const remoteRbac = remote.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
const admission = host.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
const replicas: { identity: string; metricsPort: number; process: SpillwayProcess }[] = [];
/** The operator's view of the host: an admin kubeconfig and Spillway's namespace. */
const hostFlags = ['--host-kubeconfig', clusters.host.kubeconfig, '--namespace', system];

async function hostPods(): Promise<V1Pod[]> {
  return (await host.core.listNamespacedPod({ namespace: workloads })).items;
}

async function delegates(): Promise<V1Pod[]> {
  return (await remote.core.listNamespacedPod({ namespace: workloads })).items;
}

/** The pod's service-account directory, as the kubelet mounts it: a token, the cluster CA, the namespace. */
async function serviceAccountDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-serviceaccount-'));
  const token = (
    await clusters.kubectl('host', ['create', 'token', 'spillway', '-n', system, '--duration=2h'])
  ).stdout;
  const admin = parse(await readFile(clusters.host.kubeconfig, 'utf8'));
  await writeFile(join(dir, 'token'), token.trim(), { mode: 0o600 });
  await writeFile(
    join(dir, 'ca.crt'),
    Buffer.from(admin.clusters[0].cluster['certificate-authority-data'], 'base64'),
  );
  await writeFile(join(dir, 'namespace'), system);
  return dir;
}

/** The Dockerfile's runtime stage, laid out here: /app with package.json, node_modules, dist and manifests. */
async function imageLayout(): Promise<string> {
  const app = await mkdtemp(join(tmpdir(), 'spillway-app-'));
  await run(join(root, 'node_modules', '.bin', 'tsc'), [
    '-p',
    join(root, 'tsconfig.build.json'),
    '--outDir',
    join(app, 'dist'),
  ]);
  await cp(join(root, 'package.json'), join(app, 'package.json'));
  await cp(join(root, 'manifests'), join(app, 'manifests'), { recursive: true });
  await symlink(join(root, 'node_modules'), join(app, 'node_modules'));
  return app;
}

let app: string;

beforeAll(async () => {
  await host.core.createNamespace({ body: { metadata: { name: workloads } } });
  app = await imageLayout();
});

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.process.stop('SIGTERM')));
  const logs = join(root, '.spillway', 'test-logs');
  await mkdir(logs, { recursive: true });
  for (const r of replicas)
    await writeFile(join(logs, `install-${r.identity}.log`), `${r.process.lines.join('\n')}\n`);
  await host.core.deleteNamespace({ name: workloads }).catch(() => {});
  await remote.core
    .deleteCollectionNamespacedPod({ namespace: workloads, gracePeriodSeconds: 0 })
    .catch(() => {});
  await delegatesCollected(remote, workloads);
  await remote.core.deleteNamespace({ name: workloads }).catch(() => {});
  await host.core.deleteNode({ name: nodeName }).catch(() => {});
  // What the installation made at run time, and its Deployment (KWOK "runs" its pods): the shared
  // objects of manifests/base stay, as the RBAC test applies them too.
  await apps.deleteNamespacedDeployment({ name: 'spillway', namespace: system }).catch(() => {});
  await admission.deleteMutatingWebhookConfiguration({ name: `spillway-burst.${system}` }).catch(() => {});
  await host.core.deleteNamespacedSecret({ name: 'spillway-webhook-ca', namespace: system }).catch(() => {});
  await host.core.deleteNamespacedSecret({ name: remoteName, namespace: system }).catch(() => {});
  await host.coordination
    .deleteCollectionNamespacedLease({ namespace: system, labelSelector: 'spillway.dev/ha-lease' })
    .catch(() => {});
  await remote.core.deleteNamespace({ name: remoteNamespace }).catch(() => {});
  await remoteRbac.deleteClusterRoleBinding({ name: 'spillway-remote-host' }).catch(() => {});
});

describe('install into a cluster', () => {
  it('applies the kustomize base: every object is created', async () => {
    const applied = await clusters.kubectl('host', ['apply', '-k', join(root, 'manifests', 'base')]);
    expect(applied.stdout).toContain('deployment.apps/spillway');
    const deployment = await apps.readNamespacedDeployment({ name: 'spillway', namespace: system });
    expect(deployment.spec?.template.spec?.serviceAccountName).toBe('spillway');
    expect(deployment.spec?.template.spec?.containers[0]?.image).toMatch(
      /^ghcr\.io\/spillway-dev\/spillway:\d/,
    );
    await host.core.readNamespacedServiceAccount({ name: 'spillway', namespace: system });
    await host.core.readNamespacedConfigMap({ name: 'spillway-config', namespace: system });
    await host.core.readNamespacedService({ name: 'spillway-metrics', namespace: system });
    await hostRbac.readClusterRoleBinding({ name: 'spillway' });
    await hostRbac.readNamespacedRoleBinding({ name: 'spillway-remote-clusters', namespace: system });
  });

  it('runs as the ServiceAccount, with the configuration and environment of its pods', async () => {
    const rendered = parseAllDocuments(
      (await clusters.kubectl('host', ['kustomize', join(root, 'manifests', 'base')])).stdout,
    ).map((d) => d.toJSON());
    const configMap = rendered.find((d) => d.kind === 'ConfigMap');
    const container = rendered.find((d) => d.kind === 'Deployment').spec.template.spec.containers[0];
    const configDir = await mkdtemp(join(tmpdir(), 'spillway-etc-'));
    await writeFile(join(configDir, 'config.yaml'), configMap.data['config.yaml']);
    const args = (container.args as string[]).map((arg) => arg.replace('/etc/spillway', configDir));
    const saDir = await serviceAccountDir();
    const server = new URL(
      parse(await readFile(clusters.host.kubeconfig, 'utf8')).clusters[0].cluster.server,
    );
    const ports = await freePorts(6);
    for (let i = 0; i < 2; i++) {
      const identity = `spillway-local-${i}`;
      // The pod's environment, with loopback for its IP: this machine stands in for the pod.
      const fieldValues: Record<string, string> = {
        'status.podIP': '127.0.0.1',
        'metadata.namespace': system,
        'metadata.name': identity,
      };
      const env: Record<string, string> = {
        KUBERNETES_SERVICE_HOST: server.hostname,
        KUBERNETES_SERVICE_PORT: server.port,
        SPILLWAY_SERVICE_ACCOUNT_DIR: saDir,
        SPILLWAY_LOG_LEVEL: 'info',
        NODE_ENV: 'production',
      };
      for (const variable of container.env)
        env[variable.name] = fieldValues[variable.valueFrom.fieldRef.fieldPath] ?? '';
      const [kubeletPort, webhookPort, metricsPort] = ports.slice(i * 3, i * 3 + 3).map(String) as [
        string,
        string,
        string,
      ];
      const process = spawnSpillway(
        [
          ...args.slice(1),
          '--kubelet-port',
          kubeletPort,
          '--webhook-port',
          webhookPort,
          '--metrics-port',
          metricsPort,
        ],
        env,
        // The image's entrypoint: node dist/main.js, from the build.
        join(app, 'dist', 'main.js'),
      );
      replicas.push({ identity, metricsPort: Number(metricsPort), process });
    }
    for (const replica of replicas) {
      await waitFor(`${replica.identity} ready`, async () => {
        const response = await fetch(`http://127.0.0.1:${replica.metricsPort}/readyz`).catch(() => undefined);
        return response?.status === 200 ? true : undefined;
      });
    }
    // The leader installed the webhook configuration (through the Service) with the shared CA.
    const configuration = await waitFor('the webhook configuration', () =>
      admission.readMutatingWebhookConfiguration({ name: `spillway-burst.${system}` }).catch(() => undefined),
    );
    expect(configuration.webhooks?.[0]?.clientConfig?.service).toMatchObject({
      name: 'spillway-webhook',
      namespace: system,
    });
    await host.core.readNamespacedSecret({ name: 'spillway-webhook-ca', namespace: system });
  });

  it('refuses to join into a namespace where Spillway is not installed, before touching the remote', async () => {
    const refused = await spillwayCommand([
      'join',
      remoteName,
      '--kubeconfig',
      clusters.remote.kubeconfig,
      '--host-kubeconfig',
      clusters.host.kubeconfig,
      '--namespace',
      `absent-${suffix}`,
      '--remote-namespace',
      remoteNamespace,
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`namespace absent-${suffix} does not exist in the host cluster`);
    expect(await remote.core.readNamespace({ name: remoteNamespace }).catch(() => 'absent')).toBe('absent');
  });

  it('joins a remote cluster in one command; its node appears without a restart', async () => {
    const joined = await spillwayCommand([
      'join',
      remoteName,
      '--kubeconfig',
      clusters.remote.kubeconfig,
      ...hostFlags,
      '--remote-namespace',
      remoteNamespace,
      '--duration',
      '2h',
      '--wait',
    ]);
    expect(joined.stderr).toBe('');
    expect(joined.code).toBe(0);
    expect(joined.stdout).toMatch(new RegExp(`namespace/${remoteNamespace}\\s+created`));
    expect(joined.stdout).toMatch(/serviceaccount\/spillway-host \(namespace [a-z0-9-]+\)\s+created/);
    expect(joined.stdout).toMatch(/clusterrolebinding\/spillway-remote-host\s+created/);
    expect(joined.stdout).toMatch(/token for serviceaccount\/spillway-host\s+minted, expires .* \(2h\)/);
    expect(joined.stdout).toContain(`secret/${remoteName} (namespace ${system})`);
    expect(joined.stdout).toContain(`node ${nodeName} is Ready`);
    const again = await spillwayCommand([
      'join',
      remoteName,
      '--kubeconfig',
      clusters.remote.kubeconfig,
      ...hostFlags,
    ]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('has already joined');
    for (let i = 0; i < 3; i++) {
      await host.core.createNamespacedPod({
        namespace: workloads,
        body: { metadata: { name: `app-${i}` }, spec: pinnedSpec(remoteName) },
      });
    }
    await waitFor('3 pods Running', async () =>
      (await hostPods()).filter((p) => p.status?.phase === 'Running').length === 3 ? true : undefined,
    );
  });

  it('shows the remote in `spillway status`, as text and JSON', async () => {
    const json = await spillwayCommand(['status', '-o', 'json', ...hostFlags]);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    const entry = report.remotes.find((r: { name: string }) => r.name === remoteName);
    expect(entry).toMatchObject({
      name: remoteName,
      node: nodeName,
      ready: true,
      source: `Secret ${system}/${remoteName}`,
    });
    expect(entry.pods.Running).toBe(3);
    expect(replicas.map((r) => r.identity)).toContain(entry.owner.replica.split('_')[0]);
    expect(Date.parse(entry.credentialExpires) - Date.now()).toBeGreaterThan(3600_000);
    const text = await spillwayCommand(['status', ...hostFlags]);
    expect(text.stdout).toMatch(new RegExp(`${remoteName}\\s+${nodeName}\\s+True`));
    expect(text.stdout).toContain('2 live replica(s)');
  });

  it('rotates the credential without touching a running pod, and revokes the old one', async () => {
    const before = new Map((await delegates()).map((d) => [d.metadata?.name, d.metadata?.uid]));
    const hostBefore = new Map((await hostPods()).map((p) => [p.metadata?.name, p.metadata?.uid]));
    const rotated = await spillwayCommand([
      'join',
      remoteName,
      '--kubeconfig',
      clusters.remote.kubeconfig,
      ...hostFlags,
      '--rotate',
      '--revoke-previous',
    ]);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/deleted: the credential it anchored is revoked/);
    await waitFor('the owner swapping the credential in', () =>
      replicas.some(
        (r) => r.process.logged('remote cluster credentials replaced without a restart').length > 0,
      )
        ? true
        : undefined,
    );
    // Work after the rotation goes through the new credential: the old one is revoked.
    await host.core.createNamespacedPod({
      namespace: workloads,
      body: { metadata: { name: 'after-rotation' }, spec: pinnedSpec(remoteName) },
    });
    await waitFor('4 pods Running', async () =>
      (await hostPods()).filter((p) => p.status?.phase === 'Running').length === 4 ? true : undefined,
    );
    for (const [name, uid] of before)
      expect((await delegates()).find((d) => d.metadata?.name === name)?.metadata?.uid).toBe(uid);
    for (const [name, uid] of hostBefore)
      expect((await hostPods()).find((p) => p.metadata?.name === name)?.metadata?.uid).toBe(uid);
    expect(replicas.flatMap((r) => r.process.logged('remote cluster changed; restarting it'))).toEqual([]);
    expect(condition(await host.core.readNode({ name: nodeName }), 'Ready')?.status).toBe('True');
  });

  it('leaves with pods running: drains (delegates deleted, host pods failed), then removes what join created in the remote', async () => {
    expect((await hostPods()).filter((p) => p.status?.phase === 'Running')).toHaveLength(4);
    expect(await delegates()).toHaveLength(4);
    const left = await spillwayCommand([
      'leave',
      remoteName,
      '--kubeconfig',
      clusters.remote.kubeconfig,
      ...hostFlags,
    ]);
    expect(left.code).toBe(0);
    expect(left.stdout).toContain(`secret/${remoteName} (namespace ${system})`);
    expect(left.stdout).toMatch(/serviceaccount\/spillway-host .*deleted/);
    expect(left.stdout).toMatch(new RegExp(`namespace/${remoteNamespace}\\s+deleted`));
    expect(await host.core.readNode({ name: nodeName }).catch(() => 'gone')).toBe('gone');
    // The drain ran before the credentials went: no delegate is left behind, and every host pod
    // (bare pods: nothing replaces them) is Failed with the drain's reason.
    expect(await delegates()).toEqual([]);
    const drained = await hostPods();
    expect(drained).toHaveLength(4);
    for (const pod of drained)
      expect(pod.status).toMatchObject({ phase: 'Failed', reason: 'RemoteClusterRemoved' });
    expect(
      await remoteRbac.readClusterRoleBinding({ name: 'spillway-remote-host' }).catch(() => 'gone'),
    ).toBe('gone');
    // Everything the replicas did, they were allowed to do.
    const refused = replicas
      .flatMap((r) => r.process.lines)
      .filter((line) => /forbidden|cannot (get|list|watch|create|patch|update|delete)/i.test(line));
    expect(refused).toEqual([]);
  });
});
