// The container images the real node runs, built locally under the names upstream uses, so upstream
// manifests and e2e tests run unchanged: pause (the sandbox image kubelet v1.36 expects), the e2e
// busybox and agnhost (built from k8s.io/kubernetes/test/images/agnhost). Their userland is Debian's
// static busybox with static bash as /bin/sh (busybox 1.35's ash drops environment variables whose
// names are not identifiers, which upstream's busybox 1.37 keeps).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { hostFile, type ImageSpec, type LayerEntry } from './oci.ts';

const execFileAsync = promisify(execFile);

export const IMAGE_NAMES = {
  pause: 'registry.k8s.io/pause:3.10.2',
  busybox: 'registry.k8s.io/e2e-test-images/busybox:1.37.0-1',
  agnhost: 'registry.k8s.io/e2e-test-images/agnhost:2.63.0',
} as const;

/** Where the Debian packages put the static programs the images are made of. */
export const USERLAND_SOURCES = { busybox: '/bin/busybox', bash: '/bin/bash-static' } as const;

const SHELLS = new Set(['sh', 'bash']);

/** A small root filesystem: busybox applets (in /bin and where busybox lists them), bash as sh. */
export async function userland(): Promise<LayerEntry[]> {
  const { stdout } = await execFileAsync(USERLAND_SOURCES.busybox, ['--list-full']);
  const entries: LayerEntry[] = [
    await hostFile('bin/busybox', USERLAND_SOURCES.busybox),
    await hostFile('bin/bash', USERLAND_SOURCES.bash),
    { type: 'symlink', path: 'bin/sh', target: 'bash' },
    {
      type: 'file',
      path: 'etc/passwd',
      content: Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n'),
    },
    { type: 'file', path: 'etc/group', content: Buffer.from('root:x:0:\nnobody:x:65534:\n') },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'dir', path: 'root', mode: 0o700 },
    ...['dev', 'proc', 'sys', 'home', 'var', 'usr/local/bin'].map((path) => ({ type: 'dir' as const, path })),
  ];
  const linked = new Set(['bin/busybox', 'bin/bash', 'bin/sh']);
  const link = (path: string) => {
    if (linked.has(path)) return;
    linked.add(path);
    entries.push({ type: 'symlink', path, target: '/bin/busybox' });
  };
  for (const full of stdout.split('\n').filter(Boolean)) {
    const name = full.slice(full.lastIndexOf('/') + 1);
    if (SHELLS.has(name)) continue;
    link(full);
    // Tests call applets by absolute paths other images have them at (/bin/sysctl, /bin/ping).
    link(`bin/${name}`);
  }
  return entries;
}

export interface ImageInputs {
  readonly pause: string;
  readonly agnhost: string;
}

export async function imageSpecs(inputs: ImageInputs): Promise<ImageSpec[]> {
  const base = await userland();
  return [
    {
      name: IMAGE_NAMES.pause,
      config: { entrypoint: ['/pause'], user: '65535:65535' },
      entries: [await hostFile('pause', inputs.pause)],
    },
    { name: IMAGE_NAMES.busybox, config: { cmd: ['sh'] }, entries: base },
    {
      name: IMAGE_NAMES.agnhost,
      config: { entrypoint: ['/agnhost'], cmd: ['pause'] },
      entries: [...base, await hostFile('agnhost', inputs.agnhost)],
    },
  ];
}
