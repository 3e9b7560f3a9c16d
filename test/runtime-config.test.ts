import { describe, expect, it } from '@jest/globals';
import { Command } from 'commander';
import { hostname } from 'node:os';
import { addRunOptions, ConfigError, configFields, loadConfig } from '../src/runtime/config.js';

function parseFlags(argv: string[]): Record<string, unknown> {
  const cmd = addRunOptions(new Command('run')).exitOverride();
  cmd.parse(argv, { from: 'user' });
  return cmd.opts();
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    expect(loadConfig({}, {})).toEqual({
      namespace: 'kube-system',
      nodeName: hostname(),
      pvDir: '/var/snap/microk8s/common/default-storage',
      busyboxImage: 'docker.io/library/busybox:1.37.0',
      helperCapabilities: ['DAC_OVERRIDE', 'FOWNER'],
      provisionerNames: ['microk8s.io/hostpath'],
      tolerationPolicy: 'node-taints',
      helperPriorityClassName: 'system-node-critical',
      helperTimeoutSeconds: 120,
      maxHelpersPerNode: 10,
      orphanReportMinutes: 10,
      concurrency: 16,
      nodeGonePolicy: 'keep',
      metricsAddress: ':9090',
      leaderElect: true,
      leaseName: 'microk8s.io-hostpath',
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
      logLevel: 'info',
      logFormat: 'json',
      kubeApiQps: 20,
      kubeApiBurst: 40,
      shutdownGraceSeconds: 30,
      retryBaseDelaySeconds: 1,
      retryMaxDelaySeconds: 300,
    });
  });

  it("reads the original addon's environment variables and ours", () => {
    const c = loadConfig(
      {},
      {
        NAMESPACE: 'storage',
        NODE_NAME: 'node-1',
        PV_DIR: '/data/pv',
        BUSYBOX_IMAGE: 'registry.local/busybox:1',
        PV_RECLAIM_POLICY: 'Retain',
        PROVISIONER_NAMES: ' microk8s.io/hostpath, example.com/hp ,,microk8s.io/hostpath',
        HELPER_PRIORITY_CLASS: '',
        HELPER_TIMEOUT: '30',
        WORKERS: '4',
        LEADER_ELECT: '0',
        KUBE_API_QPS: '5.5',
        KUBECONFIG: '/tmp/kc',
      },
    );
    expect(c).toMatchObject({
      namespace: 'storage',
      nodeName: 'node-1',
      pvDir: '/data/pv',
      busyboxImage: 'registry.local/busybox:1',
      pvReclaimPolicy: 'Retain',
      provisionerNames: ['microk8s.io/hostpath', 'example.com/hp'],
      helperPriorityClassName: '',
      helperTimeoutSeconds: 30,
      concurrency: 4,
      leaderElect: false,
      kubeApiQps: 5.5,
      kubeconfig: '/tmp/kc',
    });
  });

  it.each([
    ['docker.io/library/busybox:1.37.0', 'docker.io/library/busybox:1.37.0'],
    [
      `docker.io/library/busybox:1.37.0@sha256:${'0a'.repeat(32)}`,
      `docker.io/library/busybox:1.37.0@sha256:${'0a'.repeat(32)}`,
    ],
    [
      `registry.local:5000/tools/busybox@sha256:${'f'.repeat(64)}`,
      `registry.local:5000/tools/busybox@sha256:${'f'.repeat(64)}`,
    ],
    ['busybox:1.37.0', 'busybox:1.37.0'],
  ])('accepts the image reference %s unchanged', (image, expected) => {
    expect(loadConfig({}, { BUSYBOX_IMAGE: image }).busyboxImage).toBe(expected);
  });

  it.each([
    ['DAC_OVERRIDE,FOWNER', ['DAC_OVERRIDE', 'FOWNER']],
    [' cap_dac_override , FOWNER,,fowner ', ['DAC_OVERRIDE', 'FOWNER']],
    ['DAC_OVERRIDE,DAC_READ_SEARCH,FOWNER', ['DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER']],
    ['', []],
  ])('reads HELPER_CAPABILITIES=%j as %j', (value, expected) => {
    expect(loadConfig({}, { HELPER_CAPABILITIES: value }).helperCapabilities).toEqual(expected);
  });

  it.each([
    ['10', 10],
    ['0.1', 0.1],
    ['0', 0],
  ])('reads ORPHAN_REPORT_INTERVAL=%j as %d minutes (fractions allowed)', (value, expected) => {
    expect(loadConfig({}, { ORPHAN_REPORT_INTERVAL: value }).orphanReportMinutes).toBe(expected);
  });

  it('treats an empty optional variable as unset', () => {
    expect(loadConfig({}, { PV_RECLAIM_POLICY: '', KUBECONFIG: '' })).not.toHaveProperty('pvReclaimPolicy');
  });

  it('gives flags precedence over the environment', () => {
    const flags = parseFlags(['--pv-dir', '/flag', '--workers', '3', '--helper-priority-class', 'x', '--leader-elect']);
    const c = loadConfig(flags, { PV_DIR: '/env', WORKERS: '9', LEADER_ELECT: 'false' });
    expect(c).toMatchObject({ pvDir: '/flag', concurrency: 3, helperPriorityClassName: 'x', leaderElect: true });
    expect(loadConfig(parseFlags(['--leader-elect', 'false']), {}).leaderElect).toBe(false);
  });

  it.each([
    ['PV_DIR', 'relative/dir'],
    ['PV_DIR', '/a/../b'],
    ['PV_DIR', '/a//b'],
    ['PV_DIR', '/a/b/'],
    ['PV_DIR', '/'],
    ['PV_DIR', '/a/./b'],
    ['WORKERS', '0'],
    ['WORKERS', '2.5'],
    ['WORKERS', 'many'],
    ['HELPER_TIMEOUT', '-1'],
    ['LEADER_ELECT', 'yes'],
    ['PV_RECLAIM_POLICY', 'Recycle'],
    ['TOLERATION_POLICY', 'some'],
    ['NODE_GONE_POLICY', 'forget'],
    ['METRICS_ADDRESS', '9090'],
    ['METRICS_ADDRESS', ':99999'],
    ['LOG_FORMAT', 'xml'],
    ['LOG_LEVEL', 'verbose'],
    ['NAMESPACE', 'Kube_System'],
    ['PROVISIONER_NAMES', ' , '],
    ['PROVISIONER_NAMES', 'a b'],
    ['KUBE_API_QPS', 'Infinity'],
    ['ORPHAN_REPORT_INTERVAL', '-1'],
    ['ORPHAN_REPORT_INTERVAL', 'Infinity'],
    ['HELPER_CAPABILITIES', 'CAP_EVERYTHING'],
    ['BUSYBOX_IMAGE', 'UPPER/case:1'],
  ])('rejects %s=%j naming the flag and the variable', (env, value) => {
    const err = configError(() => loadConfig({}, { [env]: value }));
    const spec = Object.values(configFields).find((f) => f.env === env);
    expect(err.message).toContain(`${spec?.flag} / ${env}`);
    expect(err.issues).toHaveLength(1);
  });

  it('lists every invalid field at once', () => {
    const err = configError(() => loadConfig({}, { PV_DIR: 'x', WORKERS: '0', LOG_FORMAT: 'xml' }));
    expect(err.issues.map((i) => i.env).sort()).toEqual(['LOG_FORMAT', 'PV_DIR', 'WORKERS']);
    expect(err.message).toMatch(/^invalid configuration:\n/);
    expect(err.message).toContain('--pv-dir / PV_DIR = "x": must be an absolute path');
  });

  it.each([
    [{ BUSYBOX_IMAGE: ' ' }, 'BUSYBOX_IMAGE', 'must be an image reference such as docker.io/library/busybox:1.37.0'],
    [{ BUSYBOX_IMAGE: 'busybox@sha256:abc' }, 'BUSYBOX_IMAGE', 'invalid reference format'],
    [{ BUSYBOX_IMAGE: `busybox@md5:${'a'.repeat(32)}` }, 'BUSYBOX_IMAGE', 'unsupported digest algorithm'],
    [{ BUSYBOX_IMAGE: 'docker.io/library/BusyBox:1' }, 'BUSYBOX_IMAGE', 'repository name must be lowercase'],
    [{ HELPER_CAPABILITIES: 'DAC_OVERRIDE,ALL' }, 'HELPER_CAPABILITIES', 'must be a Linux capability name'],
    [{ HELPER_CAPABILITIES: 'dac_override;fowner' }, 'HELPER_CAPABILITIES', 'must be a Linux capability name'],
    [{ WORKERS: '1e9' }, 'WORKERS', 'must be ≤ 1000'],
    [{ METRICS_ADDRESS: 'nonsense' }, 'METRICS_ADDRESS', 'must be "[host]:port"'],
  ])('refuses %j', (env, name, message) => {
    const err = configError(() => loadConfig({}, env));
    expect(err.issues.map((i) => [i.env, i.message])).toEqual([[name, expect.stringContaining(message)]]);
  });

  it('checks the leader-election timings as client-go does', () => {
    expect(configError(() => loadConfig({}, { RENEW_DEADLINE: '15' })).issues[0]?.env).toBe('LEASE_DURATION');
    expect(configError(() => loadConfig({}, { RETRY_PERIOD: '9' })).issues[0]?.env).toBe('RENEW_DEADLINE');
    expect(configError(() => loadConfig({}, { RETRY_BASE_DELAY: '500' })).issues[0]?.env).toBe('RETRY_MAX_DELAY');
  });
});

describe('addRunOptions', () => {
  it('documents every field with its flag and environment variable', () => {
    const help = addRunOptions(new Command('run')).helpInformation().replace(/\s+/g, ' ');
    for (const spec of Object.values(configFields)) {
      expect(help).toContain(spec.flag);
      expect(help).toContain(`env ${spec.env}`);
    }
  });
});
