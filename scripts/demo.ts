// `npm run demo`: the main job on local clusters. Brings up a host and a remote cluster (real control
// planes, kwok nodes) and shows them.
/* biome-ignore-all lint/suspicious/noConsole: a demo talks to its user on the console */
import { ensureBinaries } from '../test/cluster/binaries.ts';
import { kubeconfigPathOf, up } from '../test/cluster/cli.ts';
import { kubectl } from '../test/cluster/kubectl.ts';

await up(['host', 'remote']);
const binaries = await ensureBinaries();
for (const name of ['host', 'remote']) {
  console.log(`\n$ kubectl --kubeconfig ${name}.kubeconfig get nodes -o wide`);
  console.log(
    (await kubectl(binaries.kubectl, kubeconfigPathOf(name), ['get', 'nodes', '-o', 'wide'])).stdout,
  );
}
console.log('The clusters keep running; `npm run clusters -- down` removes them.');
