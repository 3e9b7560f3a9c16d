import { describe, expect, it } from '@jest/globals';
import { ApiException, CoreV1Api, KubeConfig, type CoreV1Event, type KubernetesObject } from '@kubernetes/client-node';
import { pino } from 'pino';
import { EventRecorder, type EventsApi } from '../src/kube/events.js';

const logger = pino({ level: 'silent' });

type Call =
  | { op: 'create'; namespace: string; body: CoreV1Event }
  | { op: 'patch'; namespace: string; name: string; body: object; contentType: string | undefined };

class FakeEvents implements EventsApi {
  calls: Call[] = [];
  failCreate: Error | undefined;
  missing = new Set<string>();
  createNamespacedEvent(param: { namespace: string; body: CoreV1Event }): Promise<CoreV1Event> {
    this.calls.push({ op: 'create', namespace: param.namespace, body: param.body });
    return this.failCreate ? Promise.reject(this.failCreate) : Promise.resolve(param.body);
  }
  patchNamespacedEvent(
    param: { name: string; namespace: string; body: object },
    options?: { middleware?: unknown[] },
  ): Promise<CoreV1Event> {
    // setHeaderOptions builds a middleware; record that one was passed and its effect on a request.
    let contentType: string | undefined;
    for (const m of (options?.middleware ?? []) as {
      pre: (ctx: { setHeaderParam: (k: string, v: string) => void }) => unknown;
    }[]) {
      m.pre({ setHeaderParam: (k, v) => (k === 'Content-Type' ? (contentType = v) : undefined) });
    }
    this.calls.push({ op: 'patch', namespace: param.namespace, name: param.name, body: param.body, contentType });
    if (this.missing.has(param.name)) {
      return Promise.reject(new ApiException(404, 'not found', JSON.stringify({ code: 404, reason: 'NotFound' }), {}));
    }
    return Promise.resolve({ involvedObject: {}, metadata: {} });
  }
}

const claim: KubernetesObject = {
  kind: 'PersistentVolumeClaim',
  apiVersion: 'v1',
  metadata: { name: 'data', namespace: 'apps', uid: 'uid-1', resourceVersion: '7' },
};
const volume: KubernetesObject = {
  kind: 'PersistentVolume',
  apiVersion: 'v1',
  metadata: { name: 'pvc-uid-1', uid: 'u2' },
};

function recorder(api: FakeEvents, extra: Partial<ConstructorParameters<typeof EventRecorder>[0]> = {}): EventRecorder {
  return new EventRecorder({ core: api, component: 'microk8s.io/hostpath', host: 'node-1', logger, ...extra });
}

describe('EventRecorder', () => {
  it("creates a core/v1 Event in the object's namespace, as client-go does", async () => {
    const api = new FakeEvents();
    const r = recorder(api, { now: () => new Date('2026-11-29T12:00:00.123Z') });
    r.event(claim, 'Warning', 'ProvisioningFailed', 'helper pod failed: exit 1');
    await r.flush();
    expect(api.calls).toHaveLength(1);
    const call = api.calls[0];
    if (call?.op !== 'create') throw new Error('expected a create');
    expect(call.namespace).toBe('apps');
    expect(call.body.metadata?.name).toMatch(/^data\.[0-9a-f]+$/);
    expect(call.body).toMatchObject({
      involvedObject: {
        kind: 'PersistentVolumeClaim',
        apiVersion: 'v1',
        name: 'data',
        namespace: 'apps',
        uid: 'uid-1',
        resourceVersion: '7',
      },
      type: 'Warning',
      reason: 'ProvisioningFailed',
      message: 'helper pod failed: exit 1',
      count: 1,
      firstTimestamp: new Date('2026-11-29T12:00:00.123Z'),
      lastTimestamp: new Date('2026-11-29T12:00:00.123Z'),
      source: { component: 'microk8s.io/hostpath', host: 'node-1' },
      reportingComponent: 'microk8s.io/hostpath',
      reportingInstance: 'node-1',
    });
  });

  it('puts Events of cluster-scoped objects in the default namespace', async () => {
    const api = new FakeEvents();
    const r = recorder(api);
    r.event(volume, 'Warning', 'VolumeFailedDelete', 'rm failed');
    await r.flush();
    expect(api.calls[0]).toMatchObject({ op: 'create', namespace: 'default' });
    expect((api.calls[0] as { body: CoreV1Event }).body.involvedObject.namespace).toBeUndefined();
  });

  it('aggregates repeats into count and lastTimestamp with a merge patch', async () => {
    const api = new FakeEvents();
    let now = new Date('2026-11-29T12:00:00Z');
    const r = recorder(api, { now: () => now });
    r.event(claim, 'Warning', 'ProvisioningFailed', 'boom');
    now = new Date('2026-11-29T12:00:05Z');
    r.event(claim, 'Warning', 'ProvisioningFailed', 'boom');
    now = new Date('2026-11-29T12:00:09Z');
    r.event(claim, 'Warning', 'ProvisioningFailed', 'boom');
    r.event(claim, 'Warning', 'ProvisioningFailed', 'different message');
    r.event(claim, 'Normal', 'ProvisioningFailed', 'boom');
    await r.flush();
    // Calls of different keys may interleave; per key they are in order.
    const creates = api.calls.filter((c) => c.op === 'create');
    const patches = api.calls.filter((c) => c.op === 'patch');
    expect(creates.map((c) => [c.body.type, c.body.message])).toEqual([
      ['Warning', 'boom'],
      ['Warning', 'different message'],
      ['Normal', 'boom'],
    ]);
    expect(patches).toHaveLength(2);
    const created = creates[0] as { body: CoreV1Event };
    expect(patches[0]).toMatchObject({
      op: 'patch',
      namespace: 'apps',
      name: created.body.metadata?.name,
      body: { count: 2, lastTimestamp: '2026-11-29T12:00:05.000Z' },
      contentType: 'application/merge-patch+json',
    });
    expect(patches[1]).toMatchObject({ body: { count: 3, lastTimestamp: '2026-11-29T12:00:09.000Z' } });
  });

  it('starts a new Event after the aggregation window', async () => {
    const api = new FakeEvents();
    const r = recorder(api, { aggregationWindowSeconds: 0.01 });
    r.event(claim, 'Normal', 'Provisioning', 'x');
    await r.flush();
    await new Promise((res) => setTimeout(res, 20));
    r.event(claim, 'Normal', 'Provisioning', 'x');
    await r.flush();
    expect(api.calls.map((c) => c.op)).toEqual(['create', 'create']);
  });

  it('creates a new Event when the aggregated one was deleted', async () => {
    const api = new FakeEvents();
    const r = recorder(api);
    r.event(claim, 'Normal', 'Provisioning', 'x');
    await r.flush();
    const first = (api.calls[0] as { body: CoreV1Event }).body.metadata?.name ?? '';
    api.missing.add(first);
    r.event(claim, 'Normal', 'Provisioning', 'x');
    await r.flush();
    expect(api.calls.map((c) => c.op)).toEqual(['create', 'patch', 'create']);
    expect((api.calls[2] as { body: CoreV1Event }).body.count).toBe(1);
  });

  it('never throws, also when the API fails, and truncates long messages', async () => {
    const api = new FakeEvents();
    api.failCreate = new Error('connection refused');
    const r = recorder(api);
    expect(() => r.event(claim, 'Warning', 'X', 'm'.repeat(5000))).not.toThrow();
    expect(() => r.event({}, 'Warning', 'X', 'no metadata')).not.toThrow();
    await r.flush();
    expect((api.calls[0] as { body: CoreV1Event }).body.message).toHaveLength(1024);
  });

  it('bounds its memory with an LRU', async () => {
    const api = new FakeEvents();
    const r = recorder(api, { cacheSize: 3 });
    for (const reason of ['A', 'B', 'C']) r.event(claim, 'Normal', reason, 'm');
    r.event(claim, 'Normal', 'A', 'm'); // A is now the most recent
    r.event(claim, 'Normal', 'D', 'm'); // evicts B
    expect(r.size).toBe(3);
    r.event(claim, 'Normal', 'A', 'm');
    r.event(claim, 'Normal', 'B', 'm');
    await r.flush();
    const reasons = (op: string): string[] =>
      api.calls.flatMap((c) =>
        c.op === op && c.op === 'create' ? [c.body.reason ?? ''] : c.op === op ? ['patch'] : [],
      );
    expect(reasons('create').sort()).toEqual(['A', 'B', 'B', 'C', 'D']); // B was forgotten, so created again
    expect(reasons('patch')).toHaveLength(2); // both repeats of A
  });
});

describe('EventsApi', () => {
  it("is satisfied by client-node's CoreV1Api", () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'http://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const api: EventsApi = kc.makeApiClient(CoreV1Api);
    expect(typeof api.createNamespacedEvent).toBe('function');
  });
});
