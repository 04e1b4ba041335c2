import { describe, expect, it } from 'vitest';
import { backoffDelayMs, CircuitBreaker } from '../../packages/deployments/src/circuit-breaker.js';

describe('CircuitBreaker (fake clock)', () => {
  const make = () => {
    const clock = { t: 0 };
    const b = new CircuitBreaker({ failureThreshold: 3, openMs: 1000, now: () => clock.t });
    return { clock, b };
  };

  it('opens after consecutive failures and refuses calls while open', () => {
    const { b } = make();
    b.onFailure();
    b.onFailure();
    expect(b.state).toBe('closed');
    b.onSuccess(); // a success resets the count
    b.onFailure();
    b.onFailure();
    expect(b.canRequest()).toBe(true);
    b.onFailure();
    expect(b.state).toBe('open');
    expect(b.canRequest()).toBe(false);
  });

  it('lets one probe through after openMs: success closes, failure reopens for another openMs', () => {
    const { clock, b } = make();
    for (let i = 0; i < 3; i++) b.onFailure();
    clock.t = 999;
    expect(b.canRequest()).toBe(false);
    clock.t = 1000;
    expect(b.state).toBe('half-open');
    expect(b.canRequest()).toBe(true);
    expect(b.canRequest()).toBe(false); // one probe at a time
    b.onFailure();
    expect(b.state).toBe('open');
    clock.t = 1999;
    expect(b.canRequest()).toBe(false);
    clock.t = 2000;
    expect(b.canRequest()).toBe(true);
    b.onSuccess();
    expect(b.state).toBe('closed');
    expect(b.canRequest()).toBe(true);
  });
});

describe('backoffDelayMs', () => {
  it('grows exponentially up to maxMs, with jitter taking off at most its fraction', () => {
    const none = () => 0;
    expect([0, 1, 2, 3].map((a) => backoffDelayMs(a, { baseMs: 100, maxMs: 500 }, none))).toEqual([100, 200, 400, 500]);
    expect(backoffDelayMs(1, { baseMs: 100, jitter: 0.5 }, () => 1)).toBe(100);
  });
});
