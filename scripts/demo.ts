// `npm run demo`: the main job on local clusters. Brings up a host and a remote cluster (real control
// planes, kwok nodes) if needed, starts Spillway against them with a generated configuration, and
// shows the remote cluster as a virtual node of the host. `npm run demo -- stop` stops Spillway.
/* biome-ignore-all lint/suspicious/noConsole: a demo talks to its user on the console */
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { ensureBinaries } from '../test/cluster/binaries.ts';
import { kubeconfigPathOf, up } from '../test/cluster/cli.ts';
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
await up(['host', 'remote']);
const { kubectl: kubectlBinary } = await ensureBinaries();
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
      # KWOK simulates this usage in the remote cluster (kubectl top shows it through Spillway).
      annotations: {kwok.x-k8s.io/usage-cpu: 50m, kwok.x-k8s.io/usage-memory: 40Mi}
    spec:
      nodeSelector: {spillway.dev/cluster: remote}
      tolerations: [{key: virtual-kubelet.io/provider, operator: Exists}]
      containers:
        - name: hello
          image: nginx:1.27
          resources: {requests: {cpu: 100m, memory: 64Mi}}
          env: [{name: GREETING, valueFrom: {configMapKeyRef: {name: hello-config, key: greeting}}}]
`;
const hostApply = (args: string[], input?: string) =>
  kubectl(kubectlBinary, kubeconfigPathOf('host'), args, input === undefined ? {} : { input });
// KWOK has no containers: what `kubectl logs` reads and where `kubectl exec` runs (a local process)
// are configured in the remote cluster.
const demoDir = join(stateDir, 'demo');
await mkdir(demoDir, { recursive: true });
const logLine = (offsetSeconds: number, text: string) =>
  `${new Date(Date.now() - offsetSeconds * 1000).toISOString()} stdout F ${text}\n`;
await writeFile(
  join(demoDir, 'hello.log'),
  logLine(3, 'hello from the host cluster: started') +
    logLine(2, 'GET / 200') +
    logLine(1, 'GET /healthz 200'),
);
const remoteApply = (input: string) =>
  kubectl(kubectlBinary, kubeconfigPathOf('remote'), ['apply', '-f', '-'], { input });
await remoteApply(`
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata: {name: demo-logs}
spec:
  selector: {matchNamespaces: [demo]}
  logs: [{logsFile: ${join(demoDir, 'hello.log')}, follow: true}]
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata: {name: demo-exec}
spec:
  selector: {matchNamespaces: [demo]}
  execs: [{local: {workDir: ${demoDir}}}]
`);
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
  await show('through Spillway’s kubelet API', ['logs', '-n', 'demo', firstPod, '--tail=2']);
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
// metrics-server needs two scrapes (10 s apart) in the remote and then two of Spillway in the host.
const topDeadline = Date.now() + 90_000;
let top = await host(['top', 'pod', '-n', 'demo']);
while (top.exitCode !== 0 && Date.now() < topDeadline) {
  await sleep(3000);
  top = await host(['top', 'pod', '-n', 'demo']);
}
await show('usage read from the remote metrics-server', ['top', 'pod', '-n', 'demo']);
console.log('');
console.log('==> spill-over: a Deployment larger than the host’s own nodes');
const burstManifest = `
apiVersion: v1
kind: Namespace
metadata: {name: burst-demo, labels: {spillway.dev/burst: enabled}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: burst-demo}
spec:
  replicas: 10
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      containers:
        - {name: worker, image: busybox, resources: {requests: {cpu: "1"}}}
`;
console.log(
  'a plain Deployment (no toleration, no selector) of 10 pods of 1 CPU; the host has 2 nodes of 4 CPUs',
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
