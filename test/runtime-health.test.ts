import { describe, expect, it } from '@jest/globals';
import { createHealth, type HealthSource } from '../src/runtime/health.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function source(resource: string, synced: boolean, age: number): HealthSource {
  return { resource, hasSynced: () => synced, lastEventAgeSeconds: () => age };
}

describe('createHealth', () => {
  it('is live and ready when every informer synced and is fresh', () => {
    const h = createHealth({ informers: [source('pods', true, 3), source('nodes', true, 10)], isLeader: () => true });
    expect(h.health()).toEqual({ live: true, ready: true, leader: true });
    h.stop();
  });

  it('is not ready until every cache synced, naming them', () => {
    const h = createHealth({ informers: [source('pods', false, 1), source('nodes', false, 1)], isLeader: () => false });
    expect(h.health()).toEqual({
      live: true,
      ready: false,
      readyReason: 'caches not synced: pods, nodes',
      leader: false,
    });
    h.stop();
  });

  it('is not live when a synced informer stays silent beyond the bound', () => {
    const h = createHealth({
      informers: [source('persistentvolumes', true, 400)],
      isLeader: () => false,
      maxEventAgeSeconds: 180,
    });
    expect(h.health()).toMatchObject({ live: false, liveReason: 'informer persistentvolumes silent for 400 s' });
    h.stop();
  });

  it('is not live after an event-loop stall', async () => {
    const h = createHealth({ informers: [], isLeader: () => false, maxEventLoopDelaySeconds: 0.05 });
    await sleep(60); // let the monitor take samples first
    const until = Date.now() + 200;
    while (Date.now() < until) {
      // block the event loop
    }
    await sleep(60);
    try {
      expect(h.health()).toMatchObject({ live: false });
      expect(h.health().liveReason).toBeUndefined(); // reset per probe
    } finally {
      h.stop();
    }
  });
});
