/**
 * The benchmark's lower bound: the smallest program that makes the API writes a hostPath provisioner must make per
 * claim, with no logic around them — no validation, taints, events, retries, rate limit, leader election or metrics.
 * For each claim of its StorageClass with a selected node: create a helper pod with `spec.nodeName` set (no
 * scheduling), wait for it through a watch, delete it, create the PV. For each Released PV of the class: a helper
 * that removes the directory, then delete the PV. Every claim is handled at once.
 *
 * Run: `node dist/bench/lower-bound.js --kubeconfig <file> --namespace <ns> --class <StorageClass> --base-dir <dir>`.
 * It never exits by itself; SIGTERM stops it.
 */
import {
  CoreV1Api,
  KubeConfig,
  makeInformer,
  type V1PersistentVolume,
  type V1PersistentVolumeClaim,
  type V1Pod,
} from '@kubernetes/client-node';
import { Command } from 'commander';

const SELECTED_NODE = 'volume.kubernetes.io/selected-node';

const options = new Command()
  .requiredOption('--kubeconfig <file>')
  .requiredOption('--namespace <ns>', 'where helper pods run')
  .requiredOption('--class <name>', 'the StorageClass served')
  .requiredOption('--base-dir <dir>', 'base directory on every node')
  .option('--image <image>', 'helper image', 'docker.io/library/busybox:1.37.0')
  .parse()
  .opts<{ kubeconfig: string; namespace: string; class: string; baseDir: string; image: string }>();

const kc = new KubeConfig();
kc.loadFromFile(options.kubeconfig);
const core = kc.makeApiClient(CoreV1Api);
const helpers = new Map<string, (pod: V1Pod) => void>();
const started = new Set<string>();

async function runHelper(name: string, node: string, script: string, dir: string): Promise<void> {
  const finished = new Promise<void>((resolve, reject) =>
    helpers.set(name, (pod) => {
      const phase = pod.status?.phase;
      if (phase === 'Succeeded') resolve();
      else if (phase === 'Failed') reject(new Error(`helper ${name} failed`));
    }),
  );
  await core.createNamespacedPod({
    namespace: options.namespace,
    body: {
      metadata: { name },
      spec: {
        nodeName: node,
        restartPolicy: 'Never',
        containers: [
          {
            name: 'helper',
            image: options.image,
            command: ['sh', '-c', script, 'helper', dir],
            volumeMounts: [{ name: 'base', mountPath: '/base' }],
          },
        ],
        volumes: [{ name: 'base', hostPath: { path: options.baseDir, type: 'DirectoryOrCreate' } }],
      },
    },
  });
  try {
    await finished;
  } finally {
    helpers.delete(name);
    await core
      .deleteNamespacedPod({ namespace: options.namespace, name, gracePeriodSeconds: 0 })
      .catch(() => undefined);
  }
}

async function provision(claim: V1PersistentVolumeClaim, node: string): Promise<void> {
  const uid = claim.metadata!.uid!;
  const name = `pvc-${uid}`;
  await runHelper(`lb-create-${uid}`, node, 'mkdir -m 0777 -p "/base/$1"', name);
  await core.createPersistentVolume({
    body: {
      metadata: { name },
      spec: {
        capacity: { storage: claim.spec?.resources?.requests?.storage ?? '1Gi' },
        accessModes: claim.spec?.accessModes ?? ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Delete',
        storageClassName: options.class,
        hostPath: { path: `${options.baseDir}/${name}` },
        claimRef: { namespace: claim.metadata!.namespace!, name: claim.metadata!.name!, uid },
        nodeAffinity: {
          required: {
            nodeSelectorTerms: [
              { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] },
            ],
          },
        },
      },
    },
  });
}

async function remove(pv: V1PersistentVolume): Promise<void> {
  const name = pv.metadata!.name!;
  const node = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms?.[0]?.matchExpressions?.[0]?.values?.[0] ?? '';
  await runHelper(`lb-delete-${pv.metadata!.uid!}`, node, 'rm -rf "/base/$1"', name);
  await core.deletePersistentVolume({ name });
}

function onClaim(claim: V1PersistentVolumeClaim): void {
  const uid = claim.metadata?.uid ?? '';
  const node = claim.metadata?.annotations?.[SELECTED_NODE];
  if (claim.spec?.storageClassName !== options.class || !node || claim.spec.volumeName || started.has(uid)) return;
  started.add(uid);
  provision(claim, node).catch((err: unknown) => {
    started.delete(uid);
    console.error(`provision ${claim.metadata?.name}: ${String(err)}`);
  });
}

function onVolume(pv: V1PersistentVolume): void {
  const key = `delete-${pv.metadata?.uid ?? ''}`;
  if (pv.spec?.storageClassName !== options.class || pv.status?.phase !== 'Released' || started.has(key)) return;
  started.add(key);
  remove(pv).catch((err: unknown) => {
    started.delete(key);
    console.error(`delete ${pv.metadata?.name}: ${String(err)}`);
  });
}

const claims = makeInformer(kc, '/api/v1/persistentvolumeclaims', () =>
  core.listPersistentVolumeClaimForAllNamespaces(),
);
const volumes = makeInformer(kc, '/api/v1/persistentvolumes', () => core.listPersistentVolume());
const pods = makeInformer(kc, `/api/v1/namespaces/${options.namespace}/pods`, () =>
  core.listNamespacedPod({ namespace: options.namespace }),
);
claims.on('add', onClaim);
claims.on('update', onClaim);
volumes.on('add', onVolume);
volumes.on('update', onVolume);
pods.on('update', (pod) => helpers.get(pod.metadata?.name ?? '')?.(pod));
for (const informer of [claims, volumes, pods]) {
  informer.on('error', (err: unknown) => {
    console.error(`watch error: ${String(err)}`);
    setTimeout(() => void informer.start(), 1000);
  });
}
await Promise.all([pods.start(), claims.start(), volumes.start()]);
console.log('lower bound ready');
process.on('SIGTERM', () => process.exit(0));
