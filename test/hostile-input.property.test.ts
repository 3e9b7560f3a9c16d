/**
 * Hostile input, property-based: every user-controlled string that reaches the domain — namespace and claim names
 * (up to and past their maximum lengths), claim uids, class parameters (pvDir with `..`, `//`, unicode, control
 * characters), hand-edited PV paths and annotations, node names, hostname labels and taints — never makes
 * decideClaim / decideVolume / checkRemovablePath / buildHelperPod / helperTolerations throw, never yields a helper
 * whose path argument escapes its base directory, and helper names and label values stay valid and ≤ 63 characters.
 */
import { posix } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass, V1Taint } from '@kubernetes/client-node';
import { decideClaim } from '../src/domain/claim.js';
import { HELPER_MOUNT_PATH } from '../src/domain/constants.js';
import { buildHelperPod } from '../src/domain/helper-pod.js';
import { helperPodName, volumeDirectoryName, volumeNameForClaim } from '../src/domain/names.js';
import { checkBaseDirectory, checkRemovablePath } from '../src/domain/paths.js';
import { helperTolerations } from '../src/domain/tolerations.js';
import { decideVolume } from '../src/domain/volume.js';

const NAMES = ['microk8s.io/hostpath'];
const DEFAULT_BASE = '/var/snap/microk8s/common/default-storage';
const RUNS = { numRuns: 1500 };

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Strings a user can put anywhere: printable, unicode, control characters, and the path tricks. */
const nasty = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc
    .array(fc.constantFrom('..', '.', '', '/', '//', 'a', 'é', '\u0000', '\n', '\u202e', 'etc', '-', ' '), {
      maxLength: 12,
    })
    .map((parts) => parts.join('/')),
);
/** Valid Kubernetes names at and near their maximum lengths, plus anything at all. */
const namespaceName = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/),
  fc.constant('n'.repeat(63)),
  nasty,
);
const claimName = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/),
  fc.constant('c'.repeat(253)),
  nasty,
);
// The API server sets uids (36-character UUIDs); hand-made objects in a cache could still carry anything short.
const uid = fc.oneof(fc.uuid(), fc.string({ unit: 'binary', maxLength: 64 }), fc.constantFrom('../..', '/', '.', ''));
const pvDir = fc.oneof(
  fc.constantFrom(
    DEFAULT_BASE,
    '/mnt/usb',
    '/',
    '//',
    '/mnt//usb',
    '/mnt/usb/',
    '/mnt/./usb',
    `${DEFAULT_BASE}/../../../../etc`,
    'data/rel',
    '/mnt/\u0000x',
    '/mnt/é/ü',
    '/mnt/\u202eevil',
  ),
  nasty,
  nasty.map((s) => `/${s}`),
);
const taint: fc.Arbitrary<V1Taint> = fc
  .record({
    key: nasty,
    value: fc.option(nasty, { nil: undefined }),
    effect: fc.constantFrom('NoSchedule', 'PreferNoSchedule', 'NoExecute', ''),
  })
  .map(({ key, value, effect }) => (value === undefined ? { key, effect } : { key, value, effect }));

function storageClass(dir: string | undefined, extra: Record<string, string>): V1StorageClass {
  return {
    metadata: { name: 'sc' },
    provisioner: NAMES[0]!,
    volumeBindingMode: 'WaitForFirstConsumer',
    parameters: { ...(dir === undefined ? {} : { pvDir: dir }), ...extra },
  };
}

function pvc(namespace: string, name: string, id: string, node: string): V1PersistentVolumeClaim {
  return {
    metadata: {
      name,
      namespace,
      uid: id,
      annotations: {
        'volume.kubernetes.io/storage-provisioner': NAMES[0]!,
        'volume.kubernetes.io/selected-node': node,
      },
    },
    spec: { storageClassName: 'sc', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  };
}

/** The path the helper's shell receives (`$1`, after `sh -c <script> <name>`; create helpers have more after it). */
function helperPathArgument(pod: ReturnType<typeof buildHelperPod>): string {
  return pod.spec!.containers[0]!.command![4]!;
}

/** Asserts everything a helper pod must satisfy, whatever it was built from. */
function expectSafeHelper(pod: ReturnType<typeof buildHelperPod>, base: string): void {
  const name = pod.metadata!.name!;
  expect(name.length).toBeLessThanOrEqual(63);
  expect(name).toMatch(DNS_LABEL);
  for (const value of Object.values(pod.metadata!.labels ?? {})) {
    expect(value.length).toBeLessThanOrEqual(63);
    expect(value).toMatch(LABEL_VALUE);
  }
  const arg = helperPathArgument(pod);
  const leaf = arg.slice(HELPER_MOUNT_PATH.length + 1);
  expect(arg.startsWith(`${HELPER_MOUNT_PATH}/`)).toBe(true);
  expect(leaf.includes('/') || leaf.includes('\u0000')).toBe(false);
  expect(['', '.', '..']).not.toContain(leaf);
  expect(posix.dirname(posix.normalize(arg))).toBe(HELPER_MOUNT_PATH);
  expect(Buffer.byteLength(leaf, 'utf8')).toBeLessThanOrEqual(255);
  const hostPath = pod.spec!.volumes![0]!.hostPath!.path;
  expect(hostPath).toBe(base);
  expect(checkBaseDirectory(hostPath).ok).toBe(true);
}

describe('hostile input (property-based)', () => {
  it('claims: decideClaim never throws; every helper it leads to stays inside its base directory', () => {
    fc.assert(
      fc.property(
        namespaceName,
        claimName,
        uid,
        fc.option(pvDir, { nil: undefined }),
        fc.dictionary(nasty, nasty, { maxKeys: 3 }),
        nasty,
        fc.array(taint, { maxLength: 4 }),
        (namespace, name, id, dir, extra, nodeName, taints) => {
          const decision = decideClaim(
            pvc(namespace, name, id, nodeName),
            storageClass(dir, extra),
            NAMES,
            DEFAULT_BASE,
          );
          if (decision.action !== 'provision') {
            if (decision.action === 'refuse') expect(decision.message.length).toBeGreaterThan(0);
            return;
          }
          // A class whose pvDir is anything but a clean absolute path is refused before any helper exists.
          const base = decision.parameters.baseDirectory;
          expect(checkBaseDirectory(base).ok).toBe(true);
          if (dir !== undefined) expect(base).toBe(dir);
          const volumeName = volumeNameForClaim(id);
          const pod = buildHelperPod({
            operation: 'create',
            volumeName,
            namespace: 'kube-system',
            nodeName,
            baseDirectory: base,
            directoryName: volumeDirectoryName(namespace, name, volumeName),
            image: 'busybox',
            tolerations: helperTolerations('node-taints', taints),
            priorityClassName: '',
            activeDeadlineSeconds: 60,
            claim: { key: `${namespace}/${name}`, uid: id },
          });
          expectSafeHelper(pod, base);
        },
      ),
      RUNS,
    );
  });

  it('volumes: decideVolume and checkRemovablePath never throw; an accepted path is a direct child of a known base ending in the PV name', () => {
    const bases = [DEFAULT_BASE, '/mnt/usb'];
    fc.assert(
      fc.property(
        fc.oneof(
          nasty,
          pvDir,
          fc.tuple(fc.constantFrom(...bases), nasty).map(([b, s]) => `${b}/${s}`),
          fc.tuple(fc.constantFrom(...bases), nasty, uid).map(([b, s, u]) => `${b}/${s}-pvc-${u}`),
        ),
        uid,
        fc.dictionary(nasty, nasty, { maxKeys: 3 }),
        fc.constantFrom('Delete', 'Retain', 'Recycle', '', undefined),
        fc.constantFrom('Released', 'Bound', 'Available', 'Failed', undefined),
        fc.boolean(),
        (path, id, annotations, policy, phase, deleting) => {
          const name = volumeNameForClaim(id);
          const pv: V1PersistentVolume = {
            metadata: {
              name,
              annotations: { ...annotations, 'pv.kubernetes.io/provisioned-by': NAMES[0]! },
              ...(deleting ? { deletionTimestamp: new Date() } : {}),
            },
            spec: {
              hostPath: { path },
              ...(policy === undefined ? {} : { persistentVolumeReclaimPolicy: policy }),
            },
            ...(phase === undefined ? {} : { status: { phase } }),
          };
          const decision = decideVolume(pv, NAMES);
          expect(['ignore', 'ensure-finalizer', 'release-finalizer', 'delete']).toContain(decision.action);
          if (decision.action === 'delete') expect(policy).toBe('Delete');
          const check = checkRemovablePath(path, name, bases);
          if (!check.ok) {
            expect(check.reason.length).toBeGreaterThan(0);
            return;
          }
          expect(bases).toContain(check.base);
          expect(check.path).toBe(`${check.base}/${check.leaf}`);
          expect(posix.normalize(check.path)).toBe(check.path);
          expect(check.leaf.endsWith(name)).toBe(true);
          const pod = buildHelperPod({
            operation: 'delete',
            volumeName: name,
            namespace: 'kube-system',
            nodeName: 'n',
            baseDirectory: check.base,
            directoryName: check.leaf,
            image: 'busybox',
            tolerations: [],
            priorityClassName: '',
            activeDeadlineSeconds: 60,
          });
          expectSafeHelper(pod, check.base);
        },
      ),
      RUNS,
    );
  });

  it('names: helper pod names are valid DNS labels ≤ 63 characters and distinct for distinct volumes', () => {
    fc.assert(
      fc.property(uid, uid, fc.constantFrom('create', 'delete' as const), (a, b, op) => {
        const na = helperPodName(op, volumeNameForClaim(a));
        expect(na).toMatch(DNS_LABEL);
        expect(na.length).toBeLessThanOrEqual(63);
        if (a !== b) expect(na).not.toBe(helperPodName(op, volumeNameForClaim(b)));
      }),
      RUNS,
    );
  });

  it('tolerations: helperTolerations never throws and never adds tolerationSeconds, for any node taints', () => {
    fc.assert(
      fc.property(
        fc.array(taint, { maxLength: 6 }),
        fc.array(
          fc.record({
            key: fc.option(nasty, { nil: undefined }),
            operator: fc.constantFrom('Equal', 'Exists', undefined),
            value: fc.option(nasty, { nil: undefined }),
            effect: fc.constantFrom('NoSchedule', 'NoExecute', '', undefined),
            tolerationSeconds: fc.option(fc.integer(), { nil: undefined }),
          }),
          { maxLength: 4 },
        ),
        (taints, consumer) => {
          const out = helperTolerations(
            'node-taints',
            taints,
            consumer.map((t) => Object.fromEntries(Object.entries(t).filter(([, v]) => v !== undefined))),
          );
          for (const t of out) expect(t.tolerationSeconds).toBeUndefined();
        },
      ),
      RUNS,
    );
  });
});
