// The OCI image writer the real node's images are made with: reproducible layers and archives that
// GNU tar reads, and a layout whose index names the image for `ctr images import`.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ImageSpec, layerTar, writeImageArchive } from '../../test/cluster/images/oci.ts';

const longDir = `deep/${'d'.repeat(60)}/${'e'.repeat(60)}`;
const spec: ImageSpec = {
  name: 'registry.k8s.io/e2e-test-images/example:1.0',
  config: { entrypoint: ['/bin/hello'], cmd: ['world'] },
  entries: [
    { type: 'file', path: 'bin/hello', mode: 0o755, content: Buffer.from('#!/bin/sh\necho hello\n') },
    { type: 'symlink', path: 'bin/hi', target: 'hello' },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'file', path: `${longDir}/file.txt`, content: Buffer.from('far down\n') },
  ],
};

const tarList = (archive: Buffer) =>
  execFileSync('tar', ['-tvf', '-', '--numeric-owner', '--full-time'], { input: archive, encoding: 'utf8' });

describe('OCI image writer', () => {
  it('writes a layer GNU tar reads: sorted, parents first, owned by 0:0 at mtime 0', () => {
    const listing = tarList(layerTar([...spec.entries].reverse()));
    const lines = listing.trim().split('\n');
    expect(lines.map((line) => line.split(/\s+/).slice(5).join(' '))).toEqual([
      'bin/',
      'bin/hello',
      'bin/hi -> hello',
      'deep/',
      `deep/${'d'.repeat(60)}/`,
      `${longDir}/`,
      `${longDir}/file.txt`,
      'tmp/',
    ]);
    for (const line of lines) expect(line).toMatch(/ 0\/0 .* 1970-01-01 00:00:00 /);
    expect(lines[1]).toMatch(/^-rwxr-xr-x /);
    expect(lines[7]).toMatch(/^drwxrwxrwt /);
  });

  it('writes the same bytes for the same image, whatever the entries’ order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oci-'));
    const first = await writeImageArchive(spec, join(dir, 'a.tar'));
    const second = await writeImageArchive(
      { ...spec, entries: [...spec.entries].reverse() },
      join(dir, 'b.tar'),
    );
    const [a, b] = [await readFile(first.archive), await readFile(second.archive)];
    expect(createHash('sha256').update(a).digest('hex')).toBe(createHash('sha256').update(b).digest('hex'));
    expect(first.digest).toBe(second.digest);
    expect(first.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('lays out an index naming the image, a manifest, its config and its layer', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'oci-'));
    const written = await writeImageArchive(spec, join(dir, 'image.tar'));
    execFileSync('tar', ['-xf', written.archive, '-C', dir]);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({
      imageLayoutVersion: '1.0.0',
    });
    const [descriptor] = index.manifests;
    expect(descriptor.digest).toBe(written.digest);
    expect(descriptor.annotations['io.containerd.image.name']).toBe(spec.name);
    expect(descriptor.annotations['org.opencontainers.image.ref.name']).toBe('1.0');
    const blob = (digest: string) => readFile(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
    const manifestBytes = await blob(descriptor.digest);
    expect(`sha256:${createHash('sha256').update(manifestBytes).digest('hex')}`).toBe(descriptor.digest);
    const manifest = JSON.parse(manifestBytes.toString());
    const config = JSON.parse((await blob(manifest.config.digest)).toString());
    expect(config.config).toMatchObject({ Entrypoint: ['/bin/hello'], Cmd: ['world'] });
    const layer = await blob(manifest.layers[0].digest);
    expect(config.rootfs.diff_ids).toEqual([manifest.layers[0].digest]);
    expect(layer.length).toBe(manifest.layers[0].size);
    expect(tarList(layer)).toContain('bin/hello');
  });
});
