import { describe, expect, it } from '@jest/globals';
import { Sleeper } from '../src/runtime/sleeper.js';

describe('Sleeper', () => {
  it('ends a long sleep at once when woken, and later sleeps still wait', async () => {
    const sleeper = new Sleeper();
    let woke = false;
    const long = sleeper.sleep(3600).then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
    sleeper.wake();
    await long;
    expect(woke).toBe(true);
    const order: string[] = [];
    await Promise.race([
      sleeper.sleep(3600).then(() => order.push('sleep')),
      new Promise((r) => setTimeout(r, 20)).then(() => order.push('timer')),
    ]);
    expect(order).toEqual(['timer']);
    sleeper.wake();
  });

  it('wake without a sleep does nothing', () => {
    expect(() => new Sleeper().wake()).not.toThrow();
  });
});
