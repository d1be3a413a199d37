// What the install ships agrees with itself: the image is named once and tagged with the version, the
// Dockerfile builds what the Deployment runs, the configuration in the ConfigMap is valid, and every
// alert and dashboard query parses.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config.ts';
import { NODE_FLAGS } from '../../src/kubelet/runtime-flags.ts';
import { promqlErrors, shippedExpressions, spillwayFamilies } from '../support/monitoring.ts';

const root = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const documents = (path: string) => parseAllDocuments(read(path)).map((d) => d.toJSON());

const kustomization = parse(read('manifests/base/kustomization.yaml'));
const deployment = documents('manifests/base/deployment.yaml').find((d) => d.kind === 'Deployment');
const container = deployment.spec.template.spec.containers[0];
const { version } = JSON.parse(read('package.json'));

describe('the install manifests', () => {
  it('name the image in one place, tagged with the package version', () => {
    expect(kustomization.images).toEqual([
      { name: container.image, newName: 'ghcr.io/spillway-dev/spillway', newTag: version },
    ]);
    const imageLines = ['manifests/base/deployment.yaml', 'manifests/remote/rbac.yaml']
      .flatMap((file) => read(file).split('\n'))
      .filter((line) => /^\s*image:/.test(line));
    expect(imageLines).toEqual([`          image: ${container.image}`]);
  });

  it('run what the Dockerfile builds', () => {
    const dockerfile = read('Dockerfile');
    const entrypoint = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerfile)?.[1] ?? '[]');
    // Node's flags for Spillway (src/kubelet/runtime-flags.ts), then the compiled CLI.
    expect(entrypoint).toEqual(['node', ...NODE_FLAGS, 'dist/main.js']);
    const build = JSON.parse(read('tsconfig.build.json')).compilerOptions;
    expect(build).toMatchObject({ outDir: 'dist', rootDir: 'src' });
    expect(existsSync(join(root, 'src', 'main.ts'))).toBe(true);
    expect(dockerfile).toMatch(/^RUN npm run build/m);
    // `spillway join` reads manifests/remote at run time.
    expect(dockerfile).toMatch(/^COPY manifests \.\/manifests$/m);
    expect(container.args.slice(0, 2)).toEqual(['run', '--config']);
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'config');
    expect(container.args[2]).toBe(`${mount.mountPath}/config.yaml`);
    const ports = container.ports.map((p: { containerPort: number }) => String(p.containerPort)).sort();
    expect(/^EXPOSE (.*)$/m.exec(dockerfile)?.[1]?.split(' ').sort()).toEqual(ports);
  });

  it('carry a configuration Spillway accepts, with HA, metrics and the webhook on the ports the pod exposes', async () => {
    const configMap = documents('manifests/base/config.yaml').find((d) => d.kind === 'ConfigMap');
    const dir = await mkdtemp(join(tmpdir(), 'spillway-manifest-config-'));
    await writeFile(join(dir, 'config.yaml'), configMap.data['config.yaml']);
    const config = loadConfig(
      join(dir, 'config.yaml'),
      {},
      { SPILLWAY_KUBELET_ADDRESS: '10.0.0.7', SPILLWAY_NAMESPACE: 'spillway-system' },
    );
    expect(config.ha.enabled).toBe(true);
    const port = (name: string) =>
      container.ports.find((p: { name: string }) => p.name === name).containerPort;
    expect(config.kubelet.port).toBe(port('kubelet'));
    expect(config.metrics.port).toBe(port('metrics'));
    expect(config.webhook.port).toBe(port('webhook'));
    expect(container.livenessProbe.httpGet.port).toBe('metrics');
    const env = container.env.map((e: { name: string }) => e.name);
    expect(env).toEqual(
      expect.arrayContaining(['SPILLWAY_KUBELET_ADDRESS', 'SPILLWAY_NAMESPACE', 'SPILLWAY_HA_IDENTITY']),
    );
  });
});

describe('the monitoring manifests', () => {
  const expressions = shippedExpressions();

  it('have alerts and dashboard panels', () => {
    expect(expressions.filter((e) => e.where.startsWith('alert')).length).toBeGreaterThanOrEqual(10);
    expect(expressions.filter((e) => e.where.startsWith('panel')).length).toBeGreaterThanOrEqual(15);
  });

  it.each(expressions.map((e) => [e.where, e.expr]))(
    '%s is valid PromQL on Spillway metrics',
    (_where, expr) => {
      expect(promqlErrors(expr)).toEqual([]);
      if (!expr.startsWith('up{')) expect(spillwayFamilies(expr).length).toBeGreaterThan(0);
    },
  );
});
