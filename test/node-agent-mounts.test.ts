import { describe, expect, it } from '@jest/globals';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import {
  normalizeContainerPath,
  planContainerRoot,
  renderRootScript,
  shQuote,
  type EntryKind,
  type HostFs,
} from '../e2e/node-agent/container-root.js';
import { containerVolumeMounts, nodeHostPath, planPodVolumes } from '../e2e/node-agent/volume-plan.js';
import { CreateContainerConfigError, expandVars, resolveEnv } from '../e2e/node-agent/container-env.js';
import { selectLog } from '../e2e/node-agent/log-store.js';

/** A fake host: `/bin -> usr/bin`, `/usr/bin`, `/etc/hostname`, `/mnt/cdrom`, `/var/lib`. */
function fakeHost(entries: Record<string, EntryKind | { symlink: string }>): HostFs {
  const kindOf = (p: string): EntryKind => {
    if (p === '/') return 'dir';
    const e = entries[p];
    if (e === undefined) return 'missing';
    return typeof e === 'string' ? e : 'symlink';
  };
  return {
    kind: kindOf,
    list: (dir) =>
      Object.keys(entries)
        .filter(
          (p) =>
            p !== dir &&
            p.startsWith(dir === '/' ? '/' : `${dir}/`) &&
            !p.slice(dir === '/' ? 1 : dir.length + 1).includes('/'),
        )
        .map((p) => p.slice(p.lastIndexOf('/') + 1)),
    readlink: (p) => {
      const e = entries[p];
      if (typeof e === 'object') return e.symlink;
      throw new Error('not a symlink');
    },
  };
}

const host = fakeHost({
  '/bin': { symlink: 'usr/bin' },
  '/usr': 'dir',
  '/usr/bin': 'dir',
  '/etc': 'dir',
  '/etc/hostname': 'file',
  '/mnt': 'dir',
  '/mnt/cdrom': 'dir',
  '/var': 'dir',
  '/var/lib': 'dir',
});

describe('planContainerRoot', () => {
  it('binds the host root entries and creates a missing top-level mountPath in the tmpfs', () => {
    expect(planContainerRoot([{ containerPath: '/data/', source: '/n/hpp/x', readOnly: false }], host)).toEqual([
      { op: 'symlink', target: 'usr/bin', path: '/bin' },
      { op: 'mkdir', path: '/etc' },
      { op: 'rbind', source: '/etc', path: '/etc' },
      { op: 'mkdir', path: '/mnt' },
      { op: 'rbind', source: '/mnt', path: '/mnt' },
      { op: 'mkdir', path: '/usr' },
      { op: 'rbind', source: '/usr', path: '/usr' },
      { op: 'mkdir', path: '/var' },
      { op: 'rbind', source: '/var', path: '/var' },
      { op: 'mkdir', path: '/data' },
      { op: 'bind', source: '/n/hpp/x', path: '/data', readOnly: false },
    ]);
  });

  it('shadows the parents of a nested mountPath so siblings stay visible and the host is untouched', () => {
    const steps = planContainerRoot([{ containerPath: '/mnt/usb/disk', source: '/v', readOnly: true }], host);
    expect(steps.filter((s) => s.path.startsWith('/mnt'))).toEqual([
      { op: 'mkdir', path: '/mnt' },
      { op: 'mkdir', path: '/mnt/cdrom' },
      { op: 'rbind', source: '/mnt/cdrom', path: '/mnt/cdrom' },
      { op: 'mkdir', path: '/mnt/usb' },
      { op: 'mkdir', path: '/mnt/usb/disk' },
      { op: 'bind', source: '/v', path: '/mnt/usb/disk', readOnly: true },
    ]);
  });

  it('mounts an outer volume before an inner one and does not copy the host under a mountPath', () => {
    const steps = planContainerRoot(
      [
        { containerPath: '/var/lib/x', source: '/inner', readOnly: false },
        { containerPath: '/var', source: '/outer', readOnly: false },
      ],
      host,
    );
    expect(steps.filter((s) => s.path.startsWith('/var'))).toEqual([
      { op: 'mkdir', path: '/var' },
      { op: 'bind', source: '/outer', path: '/var', readOnly: false },
      { op: 'mkdir', path: '/var/lib/x' },
      { op: 'bind', source: '/inner', path: '/var/lib/x', readOnly: false },
    ]);
  });

  it('touches a file mount point for a file source and replaces a host file at that path', () => {
    const steps = planContainerRoot(
      [{ containerPath: '/etc/hostname', source: '/h', readOnly: true, sourceIsFile: true }],
      host,
    );
    expect(steps.filter((s) => s.path.startsWith('/etc'))).toEqual([
      { op: 'mkdir', path: '/etc' },
      { op: 'touch', path: '/etc/hostname' },
      { op: 'bind', source: '/h', path: '/etc/hostname', readOnly: true },
    ]);
  });

  it('refuses relative paths, .. and /', () => {
    expect(() => normalizeContainerPath('data')).toThrow(/absolute/);
    expect(() => normalizeContainerPath('/a/../b')).toThrow(/\.\./);
    expect(() => planContainerRoot([{ containerPath: '/', source: '/x', readOnly: false }], host)).toThrow(/at \//);
  });
});

describe('renderRootScript', () => {
  it('mounts, switches identity with setpriv and execs with exactly the container env', () => {
    const script = renderRootScript('/st/root', [{ op: 'bind', source: "/it's", path: '/data', readOnly: true }], {
      argv: ['sh', '-c', 'echo $A'],
      env: { A: 'b c' },
      workingDir: '/data',
      hostname: 'pod-1',
      user: { uid: 1000, gid: 2000, supplementaryGroups: [] },
    });
    expect(script.split('\n')).toEqual([
      'set -e',
      "mount -t tmpfs -o mode=0755 hpp-container-root '/st/root'",
      "mount --bind '/it'\\''s' '/st/root/data'",
      "mount -o remount,bind,ro '/st/root/data'",
      "umount -R -l '/st/root/st/root' 2>/dev/null || true",
      "mkdir -p '/st/root/data'",
      "hostname 'pod-1'",
      "exec 'chroot' '/st/root' 'setpriv' '--reuid=1000' '--regid=2000' '--clear-groups' '--' 'env' '-i' '-C' '/data' '--' 'A=b c' 'sh' '-c' 'echo $A'",
      '',
    ]);
    expect(shQuote('')).toBe("''");
  });
});

describe('volume planning', () => {
  const dirs = { root: '/c/nodes', node: 'n1', podDir: '/c/pods/uid' };

  it('maps hostPath to the node folder and other volumes to the pod folder', () => {
    expect(
      planPodVolumes(
        [
          { name: 'h', hostPath: { path: '/var/hpp', type: 'DirectoryOrCreate' } },
          { name: 'e', emptyDir: {} },
          { name: 'c', persistentVolumeClaim: { claimName: 'claim' } },
          { name: 'cm', configMap: { name: 'x' } },
          { name: 'g', gitRepo: { repository: 'r' } },
        ],
        dirs,
      ),
    ).toEqual([
      { name: 'h', kind: 'hostPath', hostDir: '/c/nodes/n1/var/hpp', type: 'DirectoryOrCreate' },
      { name: 'e', kind: 'emptyDir', hostDir: '/c/pods/uid/volumes/e', medium: '' },
      { name: 'c', kind: 'claim', claimName: 'claim', readOnly: false },
      {
        name: 'cm',
        kind: 'files',
        hostDir: '/c/pods/uid/volumes/cm',
        volume: { name: 'cm', configMap: { name: 'x' } },
      },
      { name: 'g', kind: 'unsupported', reason: 'volume type gitRepo is not supported by the node agent' },
    ]);
  });

  it('keeps hostPaths inside the node folder', () => {
    expect(nodeHostPath('/c/nodes', 'n1', '/')).toBe('/c/nodes/n1');
    expect(nodeHostPath('/c/nodes', 'n1', '/a/../b/')).toBe('/c/nodes/n1/b');
    expect(() => nodeHostPath('/c/nodes', 'n1', 'rel')).toThrow(/absolute/);
  });

  it('resolves volumeMounts with subPath and readOnly', () => {
    const container: V1Container = {
      name: 'c',
      volumeMounts: [
        { name: 'h', mountPath: '/data', readOnly: true },
        { name: 'h', mountPath: '/sub', subPath: 'a/b' },
      ],
    };
    const ready = new Map([['h', { hostPath: '/c/nodes/n1/var/hpp', isFile: false }]]);
    expect(containerVolumeMounts(container, ready)).toEqual([
      { containerPath: '/data', source: '/c/nodes/n1/var/hpp', readOnly: true, sourceIsFile: false },
      { containerPath: '/sub', source: '/c/nodes/n1/var/hpp/a/b', readOnly: false },
    ]);
    expect(() => containerVolumeMounts({ name: 'c', volumeMounts: [{ name: 'x', mountPath: '/x' }] }, ready)).toThrow(
      /no volume/,
    );
    expect(() =>
      containerVolumeMounts({ name: 'c', volumeMounts: [{ name: 'h', mountPath: '/x', subPath: '../e' }] }, ready),
    ).toThrow(/subPath/);
  });
});

describe('container env', () => {
  const pod: V1Pod = {
    metadata: { name: 'p', namespace: 'ns', uid: 'u', labels: { app: 'a' } },
    spec: { nodeName: 'n1', containers: [] },
  };
  const lookup = { configMap: (n: string) => (n === 'cm' ? { k: 'from-cm' } : undefined), secret: () => undefined };
  const ips = { hostIP: '127.0.0.1', podIP: '127.0.0.1' };

  it('resolves values, $(VAR) references, fieldRefs and configMap keys in order', () => {
    const env = resolveEnv(
      pod,
      {
        name: 'c',
        env: [
          { name: 'A', value: 'x' },
          { name: 'B', value: '$(A)-$(MISSING)-$$(A)' },
          { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
          { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
          { name: 'K', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k' } } },
        ],
      },
      lookup,
      ips,
      { apiServer: { host: '127.0.0.1', port: '6443' } },
    );
    expect(env).toMatchObject({ A: 'x', B: 'x-$(MISSING)-$(A)', NODE: 'n1', APP: 'a', K: 'from-cm', HOSTNAME: 'p' });
    expect(env.KUBERNETES_SERVICE_PORT).toBe('6443');
    expect(expandVars('$(A)$$', { A: '1' })).toBe('1$');
  });

  it('fails like the kubelet on a missing reference unless optional', () => {
    const c = (optional: boolean): V1Container => ({
      name: 'c',
      env: [{ name: 'S', valueFrom: { secretKeyRef: { name: 's', key: 'k', optional } } }],
    });
    expect(() => resolveEnv(pod, c(false), lookup, ips)).toThrow(CreateContainerConfigError);
    expect(() => resolveEnv(pod, c(false), lookup, ips)).toThrow('secret "s" not found');
    expect(resolveEnv(pod, c(true), lookup, ips).S).toBeUndefined();
  });
});

describe('selectLog', () => {
  const log = Buffer.from('one\ntwo\nthree\n');
  it.each([
    [{}, 'one\ntwo\nthree\n'],
    [{ tailLines: 2 }, 'two\nthree\n'],
    [{ tailLines: 10 }, 'one\ntwo\nthree\n'],
    [{ tailLines: 0 }, ''],
    [{ limitBytes: 5 }, 'one\nt'],
    [{ tailLines: 1, limitBytes: 3 }, 'thr'],
  ])('%j', (sel, expected) => {
    expect(selectLog(log, sel).toString()).toBe(expected);
  });
  it('counts a last line without newline', () => {
    expect(selectLog(Buffer.from('a\nb'), { tailLines: 1 }).toString()).toBe('b');
  });
});
