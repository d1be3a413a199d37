// A small OCI image writer: one reproducible layer (a tar with sorted entries, owner 0:0, mtime 0),
// an image config, a manifest and an index naming the image, packed as an OCI image layout archive
// that `ctr images import` reads. Nothing here needs a registry or a container engine.
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';

export type LayerEntry =
  | { readonly type: 'dir'; readonly path: string; readonly mode?: number }
  | { readonly type: 'file'; readonly path: string; readonly mode?: number; readonly content: Buffer }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string };

export interface ImageConfig {
  readonly entrypoint?: readonly string[];
  readonly cmd?: readonly string[];
  readonly env?: readonly string[];
  readonly user?: string;
  readonly workingDir?: string;
}

export interface ImageSpec {
  /** The full reference, e.g. registry.k8s.io/pause:3.10.2. */
  readonly name: string;
  readonly config: ImageConfig;
  readonly entries: readonly LayerEntry[];
}

export interface WrittenImage {
  readonly name: string;
  /** The manifest digest: what a pod's imageID shows once it runs. */
  readonly digest: string;
  readonly archive: string;
}

const BLOCK = 512;

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function field(header: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar field too long: ${value}`);
  bytes.copy(header, offset);
}

function octal(header: Buffer, offset: number, length: number, value: number): void {
  field(header, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/** One ustar header; long paths are split into prefix and name as ustar allows. */
function tarHeader(path: string, type: '0' | '2' | '5', mode: number, size: number, target = ''): Buffer {
  const header = Buffer.alloc(BLOCK);
  let name = path;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = path.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(path.slice(cut + 1)) > 100) throw new Error(`path too long: ${path}`);
    prefix = path.slice(0, cut);
    name = path.slice(cut + 1);
  }
  field(header, 0, 100, name);
  octal(header, 100, 8, mode);
  octal(header, 108, 8, 0);
  octal(header, 116, 8, 0);
  octal(header, 124, 12, size);
  octal(header, 136, 12, 0);
  header.fill(' ', 148, 156);
  field(header, 156, 1, type);
  field(header, 157, 100, target);
  field(header, 257, 8, 'ustar\x0000');
  field(header, 265, 32, 'root');
  field(header, 297, 32, 'root');
  field(header, 345, 155, prefix);
  let sum = 0;
  for (const byte of header) sum += byte;
  field(header, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return header;
}

function padding(size: number): Buffer {
  return Buffer.alloc((BLOCK - (size % BLOCK)) % BLOCK);
}

/** A tar of the entries in path order, with every parent directory present, owned by root, at mtime 0. */
export function layerTar(entries: readonly LayerEntry[]): Buffer {
  const byPath = new Map<string, LayerEntry>();
  for (const entry of entries) {
    const path = entry.path.replace(/^\/+/, '').replace(/\/+$/, '');
    if (!path) throw new Error('an entry needs a path');
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (!byPath.has(parent)) byPath.set(parent, { type: 'dir', path: parent });
    }
    byPath.set(path, { ...entry, path });
  }
  const chunks: Buffer[] = [];
  for (const path of [...byPath.keys()].sort()) {
    const entry = byPath.get(path) as LayerEntry;
    if (entry.type === 'dir') {
      chunks.push(tarHeader(`${path}/`, '5', entry.mode ?? 0o755, 0));
    } else if (entry.type === 'symlink') {
      chunks.push(tarHeader(path, '2', 0o777, 0, entry.target));
    } else {
      chunks.push(tarHeader(path, '0', entry.mode ?? 0o644, entry.content.length));
      chunks.push(entry.content, padding(entry.content.length));
    }
  }
  chunks.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(chunks);
}

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

/** Writes an OCI image layout archive of one single-layer image; the same spec always gives the same bytes. */
export async function writeImageArchive(spec: ImageSpec, archive: string): Promise<WrittenImage> {
  const layer = layerTar(spec.entries);
  const layerDigest = sha256(layer);
  const config = json({
    architecture: 'amd64',
    os: 'linux',
    created: '1970-01-01T00:00:00Z',
    config: {
      ...(spec.config.entrypoint ? { Entrypoint: spec.config.entrypoint } : {}),
      ...(spec.config.cmd ? { Cmd: spec.config.cmd } : {}),
      Env: spec.config.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ...(spec.config.user ? { User: spec.config.user } : {}),
      ...(spec.config.workingDir ? { WorkingDir: spec.config.workingDir } : {}),
    },
    rootfs: { type: 'layers', diff_ids: [layerDigest] },
  });
  const manifest = json({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: sha256(config),
      size: config.length,
    },
    layers: [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length },
    ],
  });
  const manifestDigest = sha256(manifest);
  const index = json({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: manifestDigest,
        size: manifest.length,
        platform: { architecture: 'amd64', os: 'linux' },
        annotations: {
          'io.containerd.image.name': spec.name,
          'org.opencontainers.image.ref.name': spec.name.slice(spec.name.lastIndexOf(':') + 1),
        },
      },
    ],
  });
  const blob = (data: Buffer) => ({
    type: 'file' as const,
    path: `blobs/sha256/${sha256(data).slice('sha256:'.length)}`,
    content: data,
  });
  const layout = layerTar([
    { type: 'file', path: 'oci-layout', content: json({ imageLayoutVersion: '1.0.0' }) },
    { type: 'file', path: 'index.json', content: index },
    blob(layer),
    blob(config),
    blob(manifest),
  ]);
  const handle = await open(archive, 'w');
  try {
    await handle.write(layout);
  } finally {
    await handle.close();
  }
  return { name: spec.name, digest: manifestDigest, archive };
}

/** A file of the host, copied into the image (mode kept executable when asked). */
export async function hostFile(path: string, source: string, mode = 0o755): Promise<LayerEntry> {
  return { type: 'file', path, mode, content: await readFile(source) };
}
