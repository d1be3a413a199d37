// `npm run demo`: the main job on local clusters. Brings up a host and a remote cluster (real control
// planes; the remote's node a real kubelet with real containers where the machine allows, kwok nodes
// otherwise, with a notice) if needed, starts Spillway against them with a generated configuration,
// and shows the remote cluster as a virtual node of the host. `npm run demo -- stop` stops Spillway.
/* biome-ignore-all lint/suspicious/noConsole: a demo talks to its user on the console */
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { ensureBinaries } from '../test/cluster/binaries.ts';
import { answerEveryPod } from '../test/cluster/bootstrap.ts';
import { kubeconfigPathOf, up } from '../test/cluster/cli.ts';
import { IMAGE_NAMES } from '../test/cluster/images/images.ts';
import { kubectl } from '../test/cluster/kubectl.ts';
import { isAlive } from '../test/cluster/lock.ts';
import { stopProcess } from '../test/cluster/processes.ts';

const root = join(import.meta.dirname, '..');
const stateDir = join(root, '.spillway');
const pidFile = join(stateDir, 'spillway.pid');
const logFile = join(stateDir, 'spillway.log');
const configFile = join(stateDir, 'spillway.yaml');
const nodeName = 'spillway-remote';

async function stopSpillway(): Promise<void> {
  const pid = existsSync(pidFile) ? Number(await readFile(pidFile, 'utf8')) : 0;
  if (pid && isAlive(pid)) {
    await stopProcess(pid);
    console.log(`stopped Spillway (pid ${pid})`);
  }
}

async function startSpillway(): Promise<number> {
  await writeFile(
    configFile,
    stringify({
      hostClusterName: 'host',
      host: { kubeconfig: kubeconfigPathOf('host') },
      kubelet: { address: '127.0.0.1', port: 10250 },
      // Namespaces labelled spillway.dev/burst=enabled fill local nodes first, then spill over.
      webhook: { enabled: true, port: 9443 },
      remotes: [{ name: 'remote', kubeconfig: kubeconfigPathOf('remote'), nodeName }],
    }),
  );
  const log = openSync(logFile, 'a');
  const child = spawn(process.execPath, [join(root, 'src', 'main.ts'), 'run', '--config', configFile], {
    detached: true,
    stdio: ['ignore', log, log],
  });
  child.unref();
  await writeFile(pidFile, String(child.pid));
  return child.pid as number;
}

if (process.argv[2] === 'stop') {
  await stopSpillway();
  process.exit(0);
}

console.log('==> local clusters');
const clusters = await up(['host', 'remote'], { realNode: true });
const realNode = clusters.remote?.realNode ?? false;
const binaries = await ensureBinaries();
const { kubectl: kubectlBinary } = binaries;
const host = (args: string[]) =>
  kubectl(kubectlBinary, kubeconfigPathOf('host'), args, { allowFailure: true });

console.log('\n==> Spillway');
await stopSpillway();
const pid = await startSpillway();
console.log(
  `started Spillway (pid ${pid}) with ${relative(process.cwd(), configFile)}; logs in ${relative(process.cwd(), logFile)}`,
);
const deadline = Date.now() + 60_000;
for (;;) {
  // Ready, and the host's node lifecycle controller has lifted any not-ready/unreachable taint.
  const ready = await host([
    'get',
    'node',
    nodeName,
    '-o',
    'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.spec.taints[*].key}',
  ]);
  if (ready.stdout.startsWith('True') && !ready.stdout.includes('node.kubernetes.io/')) break;
  if (Date.now() > deadline || !isAlive(pid)) {
    console.error(`the virtual node did not become Ready; see ${logFile}`);
    process.exit(1);
  }
  await sleep(500);
}

console.log('\n$ kubectl get nodes -o wide');
console.log((await host(['get', 'nodes', '-o', 'wide'])).stdout);
console.log(`$ kubectl get node ${nodeName} (capacity = what the remote cluster can run)`);
console.log(
  (
    await host([
      'get',
      'node',
      nodeName,
      '-o',
      'custom-columns=NODE:.metadata.name,CPU:.status.allocatable.cpu,MEMORY:.status.allocatable.memory,PODS:.status.allocatable.pods,REGION:.metadata.labels.topology\\.kubernetes\\.io/region,TAINTS:.spec.taints[*].key',
    ])
  ).stdout,
);
console.log('==> a sample app through the virtual node');
// On the real node the app is a real process: agnhost's HTTP server, started by a shell that first
// prints the greeting from the ConfigMap. On KWOK nothing runs; KWOK simulates its usage instead.
const app = realNode
  ? `image: ${IMAGE_NAMES.agnhost}
          command: [sh, -c, 'echo "$GREETING: agnhost netexec starting"; exec /agnhost netexec --http-port=8080']
          readinessProbe: {httpGet: {path: /hostname, port: 8080}, periodSeconds: 2}`
  : 'image: nginx:1.27';
const manifest = `
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: hello-config, namespace: demo}
data: {greeting: "hello from the host cluster"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: hello, namespace: demo}
spec:
  replicas: 3
  selector: {matchLabels: {app: hello}}
  template:
    metadata:
      labels: {app: hello}
      annotations: {kwok.x-k8s.io/usage-cpu: 50m, kwok.x-k8s.io/usage-memory: 40Mi}
    spec:
      nodeSelector: {spillway.dev/cluster: remote}
      tolerations: [{key: virtual-kubelet.io/provider, operator: Exists}]
      containers:
        - name: hello
          ${app}
          resources: {requests: {cpu: 100m, memory: 64Mi}}
          env: [{name: GREETING, valueFrom: {configMapKeyRef: {name: hello-config, key: greeting}}}]
`;
const hostApply = (args: string[], input?: string) =>
  kubectl(kubectlBinary, kubeconfigPathOf('host'), args, input === undefined ? {} : { input });
if (!realNode) {
  // KWOK has no containers: it answers logs and exec for every pod (a local process runs the command).
  await answerEveryPod(kubeconfigPathOf('remote'), binaries, join(stateDir, 'clusters', 'remote'));
}
await hostApply(['apply', '-f', '-'], manifest);
await hostApply(['rollout', 'status', 'deployment/hello', '-n', 'demo', '--timeout=120s']);
console.log('\n$ kubectl get pods -n demo -o wide      # host cluster: the pods, on the virtual node');
console.log((await host(['get', 'pods', '-n', 'demo', '-l', 'app=hello', '-o', 'wide'])).stdout);
console.log(
  '$ kubectl get pods -n demo -o wide      # remote cluster: their delegates, on real remote nodes',
);
const remotePods = await kubectl(kubectlBinary, kubeconfigPathOf('remote'), [
  'get',
  'pods',
  '-n',
  'demo',
  '-l',
  'app=hello',
  '-o',
  'wide',
]);
console.log(remotePods.stdout);

console.log('==> kubectl on the host, for pods that run in the remote cluster');
const firstPod = (await host(['get', 'pods', '-n', 'demo', '-l', 'app=hello', '-o', 'name'])).stdout
  .split('\n')[0]
  ?.trim();
const show = async (title: string, args: string[]) => {
  const result = await host(args);
  console.log(`\n$ kubectl ${args.join(' ')}${title ? `      # ${title}` : ''}`);
  console.log((result.stdout + result.stderr).trimEnd());
};
if (firstPod) {
  if (realNode) {
    await show('the container’s own log, read by the real kubelet', [
      'logs',
      '-n',
      'demo',
      firstPod,
      '--tail=3',
    ]);
    await show('a real process in the container: its PID 1', [
      'exec',
      '-n',
      'demo',
      firstPod,
      '--',
      'sh',
      '-c',
      'ps -o pid,user,args; echo; tr "\\0" " " < /proc/1/cmdline; echo',
    ]);
  } else {
    await show('KWOK simulates the pod: there is no container log', ['logs', '-n', 'demo', firstPod]);
    await show('KWOK runs it as a local process', [
      'exec',
      '-n',
      'demo',
      firstPod,
      '--',
      'echo',
      'hello from exec',
    ]);
  }
}
// metrics-server needs two scrapes (10 s apart) in the remote and then two of Spillway in the host.
const topDeadline = Date.now() + 90_000;
let top = await host(['top', 'pod', '-n', 'demo']);
while (top.exitCode !== 0 && Date.now() < topDeadline) {
  await sleep(3000);
  top = await host(['top', 'pod', '-n', 'demo']);
}
await show(
  realNode
    ? 'the real kubelet’s usage, read from the remote metrics-server'
    : 'usage KWOK simulates, read from the remote metrics-server',
  ['top', 'pod', '-n', 'demo'],
);
console.log('');
console.log('==> spill-over: a Deployment larger than the host’s own nodes');
// The real node is this machine: 2 CPUs, so one 1-CPU pod spills over there; 4 CPUs per KWOK node.
const replicas = realNode ? 9 : 10;
const burstManifest = `
apiVersion: v1
kind: Namespace
metadata: {name: burst-demo, labels: {spillway.dev/burst: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: burst-demo}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
        - {name: worker, image: ${IMAGE_NAMES.busybox}, command: [sleep, "3600"], resources: {requests: {cpu: "1"}}}
`;
console.log(
  `a plain Deployment (no toleration, no selector) of ${replicas} pods of 1 CPU; the host has 2 nodes of 4 CPUs`,
);
await hostApply(['apply', '-f', '-'], burstManifest);
await hostApply(['rollout', 'status', 'deployment/worker', '-n', 'burst-demo', '--timeout=120s']);
await show('local nodes first, the surplus on the virtual node', [
  'get',
  'pods',
  '-n',
  'burst-demo',
  '-o',
  'custom-columns=POD:.metadata.name,NODE:.spec.nodeName,STATUS:.status.phase,DELETION-COST:.metadata.annotations.controller\\.kubernetes\\.io/pod-deletion-cost',
  '--sort-by=.spec.nodeName',
]);
console.log('');
console.log(
  'Spillway keeps running; `npm run demo -- stop` stops it and `npm run clusters -- down` removes the clusters.',
);
