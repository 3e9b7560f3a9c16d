import { afterEach, describe, expect, it } from '@jest/globals';
import { KubeConfig, type KubernetesListObject, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import {
  objectKey,
  ResilientInformer,
  type ListOptions,
  type ResilientInformerOptions,
  type WatchLike,
} from '../src/kube/informer.js';
import { matchesLabelSelector, parseLabelSelector } from '../src/kube/label-selector.js';
import { createMetrics, type Metrics } from '../src/runtime/metrics.js';

const logger = pino({ level: 'silent' });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return;
    await sleep(2);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function pod(name: string, rv: string, extra: { node?: string; labels?: Record<string, string> } = {}): V1Pod {
  return {
    metadata: { name, namespace: 'ns', resourceVersion: rv, labels: extra.labels ?? { app: 'helper' } },
    spec: { containers: [], ...(extra.node !== undefined ? { nodeName: extra.node } : {}) },
  };
}
/** A watch object as it arrives on the wire: with kind and apiVersion, timestamps as strings. */
function wire(p: V1Pod): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Pod', ...(JSON.parse(JSON.stringify(p)) as Record<string, unknown>) };
}

/** One watch connection opened by the informer; the test drives it. */
interface FakeConnection {
  path: string;
  query: Record<string, string | number | boolean | undefined>;
  send: (type: string, obj: unknown) => void;
  end: (err?: unknown) => void;
  aborted: () => boolean;
}

class FakeWatch implements WatchLike {
  readonly connections: FakeConnection[] = [];
  /** When set, the next watch calls fail at connect with this error. */
  connectError: unknown;
  watch(
    path: string,
    query: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, obj: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    if (this.connectError !== undefined) {
      done(this.connectError);
      return Promise.resolve(controller);
    }
    let ended = false;
    this.connections.push({
      path,
      query,
      send: (type, obj) => {
        if (!ended && !controller.signal.aborted) callback(type, obj);
      },
      end: (err) => {
        if (ended) return;
        ended = true;
        done(err ?? null);
      },
      aborted: () => controller.signal.aborted,
    });
    return Promise.resolve(controller);
  }
  get last(): FakeConnection {
    const c = this.connections[this.connections.length - 1];
    if (!c) throw new Error('no watch yet');
    return c;
  }
}

class FakeList {
  items: V1Pod[] = [];
  rv = '100';
  calls: ListOptions[] = [];
  failures: Error[] = [];
  /** Continue tokens the server no longer accepts (410 Gone, as after etcd compaction). */
  expired = new Set<string>();
  readonly fn = (opts: ListOptions): Promise<KubernetesListObject<V1Pod>> => {
    this.calls.push(opts);
    const failure = this.failures.shift();
    if (failure !== undefined) return Promise.reject(failure);
    if (opts._continue !== undefined && this.expired.has(opts._continue)) {
      return Promise.reject(Object.assign(new Error('continue token expired'), { statusCode: 410 }));
    }
    const from = opts._continue !== undefined ? Number(opts._continue) : 0;
    const to = opts.limit !== undefined ? from + opts.limit : this.items.length;
    return Promise.resolve({
      apiVersion: 'v1',
      kind: 'PodList',
      metadata: { resourceVersion: this.rv, ...(to < this.items.length ? { _continue: String(to) } : {}) },
      items: this.items.slice(from, to).map((p) => structuredClone(p)),
    });
  };
}

interface Harness {
  informer: ResilientInformer<V1Pod>;
  watch: FakeWatch;
  list: FakeList;
  events: string[];
  metrics: Metrics;
}
const informers: ResilientInformer<V1Pod>[] = [];
afterEach(() => informers.splice(0).forEach((i) => i.stop()));

function harness(opts: Partial<ResilientInformerOptions<V1Pod>> = {}): Harness {
  const watch = new FakeWatch();
  const list = new FakeList();
  const metrics = createMetrics();
  const informer = new ResilientInformer<V1Pod>({
    resource: 'pods',
    path: '/api/v1/namespaces/ns/pods',
    list: list.fn,
    kc: new KubeConfig(),
    logger,
    metrics,
    watch,
    backoff: { baseSeconds: 0.005, maxSeconds: 0.01 },
    random: () => 0,
    ...opts,
  });
  informers.push(informer);
  const events: string[] = [];
  informer.on('add', (o) => events.push(`add ${o.metadata?.name}@${o.metadata?.resourceVersion}`));
  informer.on('update', (o, old) =>
    events.push(`update ${o.metadata?.name}@${old?.metadata?.resourceVersion}->${o.metadata?.resourceVersion}`),
  );
  informer.on('delete', (o) => events.push(`delete ${o.metadata?.name}`));
  return { informer, watch, list, events, metrics };
}

async function restarts(metrics: Metrics): Promise<number> {
  return (await metrics.informerRestarts.get()).values.find((v) => v.labels['resource'] === 'pods')?.value ?? 0;
}

describe('ResilientInformer', () => {
  it('lists, fills the cache, emits adds, then watches from the list resourceVersion', async () => {
    const h = harness();
    h.list.items = [pod('a', '1'), pod('b', '2')];
    expect(h.informer.hasSynced()).toBe(false);
    await h.informer.start();
    expect(h.informer.hasSynced()).toBe(true);
    expect(h.events.sort()).toEqual(['add a@1', 'add b@2']);
    expect(h.informer.get('ns/a')?.metadata?.resourceVersion).toBe('1');
    expect(h.informer.get('ns/a')?.kind).toBe('Pod'); // filled in from the list kind
    expect(h.informer.get('ns/a')?.apiVersion).toBe('v1');
    expect(h.informer.list()).toHaveLength(2);
    await until(() => h.watch.connections.length === 1);
    expect(h.watch.last.path).toBe('/api/v1/namespaces/ns/pods');
    expect(h.watch.last.query).toMatchObject({ resourceVersion: '100', allowWatchBookmarks: true });
    expect(Number(h.watch.last.query['timeoutSeconds'])).toBeGreaterThanOrEqual(300);
  });

  it('applies watch events to the cache and emits add/update/delete with the old object', async () => {
    const h = harness();
    h.list.items = [pod('a', '1')];
    await h.informer.start();
    await until(() => h.watch.connections.length === 1);
    h.events.length = 0;
    h.watch.last.send('ADDED', wire(pod('b', '101')));
    h.watch.last.send('MODIFIED', wire(pod('a', '102')));
    h.watch.last.send('DELETED', wire(pod('b', '103')));
    h.watch.last.send('DELETED', wire(pod('never-seen', '104')));
    expect(h.events).toEqual(['add b@101', 'update a@1->102', 'delete b']);
    expect(h.informer.get('ns/b')).toBeUndefined();
    expect(h.informer.get('ns/a')?.metadata?.resourceVersion).toBe('102');
  });

  it('deserializes watch objects like list objects (timestamps become Dates)', async () => {
    const h = harness();
    await h.informer.start();
    await until(() => h.watch.connections.length === 1);
    h.watch.last.send('ADDED', {
      ...wire(pod('a', '1')),
      metadata: { name: 'a', namespace: 'ns', resourceVersion: '1', creationTimestamp: '2026-11-29T10:00:00Z' },
    });
    expect(h.informer.get('ns/a')?.metadata?.creationTimestamp).toEqual(new Date('2026-11-29T10:00:00Z'));
  });

  it('resumes a cleanly closed watch from the last resourceVersion (bookmarks included) without relisting', async () => {
    const h = harness();
    await h.informer.start();
    await until(() => h.watch.connections.length === 1);
    h.watch.last.send('ADDED', wire(pod('a', '150')));
    h.watch.last.send('BOOKMARK', { apiVersion: 'v1', kind: 'Pod', metadata: { resourceVersion: '180' } });
    h.watch.last.end();
    await until(() => h.watch.connections.length === 2);
    expect(h.watch.last.query['resourceVersion']).toBe('180');
    expect(h.list.calls).toHaveLength(1);
    expect(await restarts(h.metrics)).toBe(0);
  });

  it("resumes after client-node's idle TimeoutError without counting a restart", async () => {
    const h = harness();
    await h.informer.start();
    await until(() => h.watch.connections.length === 1);
    h.watch.last.send('ADDED', wire(pod('a', '150')));
    h.watch.last.end(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    await until(() => h.watch.connections.length === 2);
    expect(h.watch.last.query['resourceVersion']).toBe('150');
    expect(h.list.calls).toHaveLength(1);
  });

  it('restarts after any watch error: relists and emits the difference against the cache', async () => {
    const h = harness();
    h.list.items = [pod('keep', '1'), pod('change', '2'), pod('vanish', '3')];
    await h.informer.start();
    await until(() => h.watch.connections.length === 1);
    h.events.length = 0;
    // Meanwhile on the server: one changed, one deleted, one created.
    h.list.items = [pod('keep', '1'), pod('change', '20'), pod('new', '21')];
    h.list.rv = '200';
    h.watch.last.end(new Error('socket hang up'));
    await until(() => h.watch.connections.length === 2);
    expect(h.events.sort()).toEqual(['add new@21', 'delete vanish', 'update change@2->20']);
    expect(h.watch.last.query['resourceVersion']).toBe('200');
    expect(h.list.calls).toHaveLength(2);
    expect(await restarts(h.metrics)).toBe(1);
  });

  it('relists at once on a 410 Gone ERROR event', async () => {
    const h = harness({ backoff: { baseSeconds: 60, maxSeconds: 60 } }); // a backoff would time the test out
    await h.informer.start();
    await until(() => h.watch.connections.length === 1);
    const first = h.watch.last;
    first.send('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
    await until(() => h.watch.connections.length === 2);
    expect(first.aborted()).toBe(true);
    expect(h.list.calls).toHaveLength(2);
    expect(await restarts(h.metrics)).toBe(1);
  });

  it('keeps retrying a failing first list with backoff; start resolves once a list succeeds', async () => {
    const h = harness();
    h.list.failures = [new Error('connection refused'), Object.assign(new Error('Forbidden'), { code: 403 })];
    h.list.items = [pod('a', '1')];
    await h.informer.start();
    expect(h.list.calls).toHaveLength(3);
    expect(h.informer.hasSynced()).toBe(true);
    expect(await restarts(h.metrics)).toBe(2);
  });

  it('backs off when watches keep failing at connect, and recovers', async () => {
    const h = harness();
    await h.informer.start();
    await until(() => h.watch.connections.length === 1);
    h.watch.connectError = Object.assign(new Error('Internal Server Error'), { statusCode: 500 });
    h.watch.last.end(new Error('broken pipe'));
    await until(() => h.list.calls.length >= 3, 'relists while the watch fails');
    h.watch.connectError = undefined;
    await until(() => h.watch.connections.length === 2, 'a new watch');
    expect(await restarts(h.metrics)).toBeGreaterThanOrEqual(2);
  });

  it('passes the selectors to list and watch, and drops list items the label selector does not match', async () => {
    const h = harness({ labelSelector: 'app=helper', fieldSelector: 'spec.nodeName=n1' });
    h.list.items = [pod('mine', '1'), pod('other', '2', { labels: { app: 'web' } })];
    await h.informer.start();
    expect(h.list.calls[0]).toEqual({ labelSelector: 'app=helper', fieldSelector: 'spec.nodeName=n1', limit: 500 });
    expect(h.informer.list().map(objectKey)).toEqual(['ns/mine']);
    await until(() => h.watch.connections.length === 1);
    expect(h.watch.last.query).toMatchObject({ labelSelector: 'app=helper', fieldSelector: 'spec.nodeName=n1' });
    // An object modified so that it no longer matches leaves the cache.
    h.watch.last.send('MODIFIED', wire(pod('mine', '5', { labels: { app: 'web' } })));
    expect(h.informer.get('ns/mine')).toBeUndefined();
    expect(h.events).toContain('delete mine');
  });

  it('lists in pages of the page size, following continue tokens, and watches from the last page', async () => {
    const h = harness({ pageSize: 2 });
    h.list.items = ['a', 'b', 'c', 'd', 'e'].map((n, i) => pod(n, String(i + 1)));
    await h.informer.start();
    expect(h.list.calls).toEqual([{ limit: 2 }, { limit: 2, _continue: '2' }, { limit: 2, _continue: '4' }]);
    expect(h.informer.list().map(objectKey)).toEqual(['ns/a', 'ns/b', 'ns/c', 'ns/d', 'ns/e']);
    expect(h.events).toHaveLength(5);
    await until(() => h.watch.connections.length === 1);
    expect(h.watch.last.query.resourceVersion).toBe('100');
  });

  it('falls back to one full list when a continue token has expired (410), as client-go pager does', async () => {
    const h = harness({ pageSize: 2 });
    h.list.items = ['a', 'b', 'c'].map((n, i) => pod(n, String(i + 1)));
    h.list.expired.add('2');
    await h.informer.start();
    expect(h.list.calls).toEqual([{ limit: 2 }, { limit: 2, _continue: '2' }, {}]);
    expect(h.informer.list().map(objectKey)).toEqual(['ns/a', 'ns/b', 'ns/c']); // no duplicates of the first page
    expect(await restarts(h.metrics)).toBe(0);
  });

  it('pageSize 0 lists in one request', async () => {
    const h = harness({ pageSize: 0 });
    h.list.items = [pod('a', '1')];
    await h.informer.start();
    expect(h.list.calls).toEqual([{}]);
  });

  it('caches list items and watch objects through the transform', async () => {
    const strip = (p: V1Pod): V1Pod => ({
      ...p,
      metadata: { ...p.metadata, managedFields: [] },
      spec: { containers: [] },
    });
    const h = harness({ transform: strip });
    const fat = (name: string, rv: string): V1Pod => ({
      ...pod(name, rv, { node: 'n1' }),
      metadata: { ...pod(name, rv).metadata, managedFields: [{ manager: 'kubectl' }] },
    });
    h.list.items = [fat('a', '1')];
    await h.informer.start();
    expect(h.informer.get('ns/a')).toMatchObject({
      kind: 'Pod',
      metadata: { managedFields: [] },
      spec: { containers: [] },
    });
    expect(h.informer.get('ns/a')?.spec?.nodeName).toBeUndefined();
    await until(() => h.watch.connections.length === 1);
    h.watch.last.send('ADDED', wire(fat('b', '2')));
    expect(h.informer.get('ns/b')?.metadata?.managedFields).toEqual([]);
    expect(h.informer.get('ns/b')?.spec?.nodeName).toBeUndefined();
  });

  it('a throwing transform caches the object as it came', async () => {
    const h = harness({
      transform: () => {
        throw new Error('bug');
      },
    });
    h.list.items = [pod('a', '1')];
    await h.informer.start();
    expect(h.informer.get('ns/a')?.metadata?.name).toBe('a');
  });

  it('maintains indexes incrementally', async () => {
    const h = harness();
    h.list.items = [pod('a', '1', { node: 'n1' }), pod('b', '2', { node: 'n1' })];
    h.informer.addIndex('node', (p) => (p.spec?.nodeName ? [p.spec.nodeName] : []));
    expect(() => h.informer.addIndex('node', () => [])).toThrow(/exists/);
    await h.informer.start();
    expect(
      h.informer
        .byIndex('node', 'n1')
        .map((p) => p.metadata?.name)
        .sort(),
    ).toEqual(['a', 'b']);
    await until(() => h.watch.connections.length === 1);
    h.watch.last.send('MODIFIED', wire(pod('b', '3', { node: 'n2' })));
    h.watch.last.send('DELETED', wire(pod('a', '4', { node: 'n1' })));
    expect(h.informer.byIndex('node', 'n1')).toEqual([]);
    expect(h.informer.byIndex('node', 'n2').map((p) => p.metadata?.name)).toEqual(['b']);
    // An index added later covers the cached objects.
    h.informer.addIndex('name', (p) => [p.metadata?.name ?? '']);
    expect(h.informer.byIndex('name', 'b')).toHaveLength(1);
    expect(() => h.informer.byIndex('nope', 'x')).toThrow(/unknown index/);
  });

  it('re-emits update for every object on resync', async () => {
    const h = harness({ resyncSeconds: 0.02 });
    h.list.items = [pod('a', '1'), pod('b', '2')];
    await h.informer.start();
    await until(() => h.events.filter((e) => e.startsWith('update')).length >= 2, 'a resync');
    expect(h.events).toContain('update a@1->1');
    expect(h.events).toContain('update b@2->2');
  });

  it('survives a throwing handler', async () => {
    const h = harness();
    h.informer.on('add', () => {
      throw new Error('handler bug');
    });
    h.list.items = [pod('a', '1')];
    await h.informer.start();
    await until(() => h.watch.connections.length === 1);
    h.watch.last.send('ADDED', wire(pod('b', '2')));
    expect(h.events).toEqual(['add a@1', 'add b@2']);
  });

  it('stops: aborts the watch, emits nothing more, and start resolves even before a sync', async () => {
    const h = harness();
    await h.informer.start();
    await until(() => h.watch.connections.length === 1);
    const conn = h.watch.last;
    h.informer.stop();
    expect(conn.aborted()).toBe(true);
    conn.send('ADDED', wire(pod('late', '9')));
    conn.end(new Error('aborted'));
    await sleep(20);
    expect(h.events).toEqual([]);
    expect(h.watch.connections).toHaveLength(1);

    const never = harness();
    never.list.failures = Array.from({ length: 1000 }, () => new Error('down'));
    const started = never.informer.start();
    await sleep(10);
    never.informer.stop();
    await started;
    expect(never.informer.hasSynced()).toBe(false);
  });

  it('reports the age of the last contact, also as a metric', async () => {
    const h = harness();
    await h.informer.start();
    await sleep(30);
    expect(h.informer.lastEventAgeSeconds()).toBeGreaterThanOrEqual(0.02);
    await until(() => h.watch.connections.length === 1);
    h.watch.last.send('ADDED', wire(pod('a', '1')));
    expect(h.informer.lastEventAgeSeconds()).toBeLessThan(0.02);
    expect(await h.metrics.registry.metrics()).toMatch(
      /hostpath_provisioner_informer_last_event_age_seconds\{resource="pods"\} \d/,
    );
  });
});

describe('objectKey', () => {
  it('is namespace/name, or name for cluster-scoped objects', () => {
    expect(objectKey({ metadata: { name: 'c', namespace: 'ns' } })).toBe('ns/c');
    expect(objectKey({ metadata: { name: 'pv-1' } })).toBe('pv-1');
    expect(objectKey({ metadata: { name: 'pv-1', namespace: '' } })).toBe('pv-1');
  });
});

describe('label selectors', () => {
  it.each([
    ['app=helper', { app: 'helper' }, true],
    ['app==helper', { app: 'helper' }, true],
    ['app=helper', { app: 'web' }, false],
    ['app!=helper', {}, true],
    ['app!=helper', { app: 'helper' }, false],
    ['app in (a, b)', { app: 'b' }, true],
    ['app notin (a,b)', { app: 'c' }, true],
    ['app notin (a,b)', { app: 'a' }, false],
    ['app', { app: '' }, true],
    ['!app', { app: '' }, false],
    ['!app', {}, true],
    ['example.com/managed-by=hp,op in (create,delete)', { 'example.com/managed-by': 'hp', op: 'delete' }, true],
    ['', { anything: 'x' }, true],
  ])('%s on %j → %s', (selector, labels, expected) => {
    expect(matchesLabelSelector(parseLabelSelector(selector), labels)).toBe(expected);
  });

  it('rejects what it cannot parse', () => {
    expect(() => parseLabelSelector('a=b=c')).toThrow(/cannot parse/);
  });
});
