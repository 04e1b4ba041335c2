/**
 * Prestarted workers (controller/warm-pool.ts) and the hint that drives them: while an upscale waits
 * out its delay the policy says how many replicas it would add (`pending`), without deciding earlier.
 */
import { describe, expect, it } from 'vitest';
import { defaultAutoscalingPolicy } from '../../packages/core/src/controller/autoscaling-policy.js';
import { AutoscalingStateManager } from '../../packages/core/src/controller/autoscaling-state.js';
import { WarmPool } from '../../packages/core/src/controller/warm-pool.js';
import type { ActorRef } from '../../packages/core/src/actor/actor-ref.js';
import type { CallServer, IncomingCall } from '../../packages/core/src/actor/rpc-peer.js';
import type { ResolvedAutoscaling } from '../../packages/core/src/contract/autoscaling.js';

const config: ResolvedAutoscaling = {
  minReplicas: 1,
  maxReplicas: 5,
  initialReplicas: 1,
  targetOngoingRequests: 2,
  upscaleDelayS: 2,
  downscaleDelayS: 10,
  metricsIntervalS: 1,
  lookBackPeriodS: 5,
  upscalingFactor: 1,
  downscalingFactor: 1,
};

function fakeActor(id: string, server: CallServer) {
  let exit!: (reason: string) => void;
  const exited = new Promise<string>((r) => {
    exit = r;
  });
  const actor = {
    id,
    kind: 'thread',
    pid: 1,
    alive: true,
    exited,
    exitSignal: new AbortController().signal,
    killed: false,
    server,
    kill: async () => {
      actor.killed = true;
      exit('killed');
    },
  };
  return actor;
}

function pool(idleMs = 1000) {
  const made: ReturnType<typeof fakeActor>[] = [];
  const p = new WarmPool({
    max: 3,
    idleMs,
    create: (id, server) => {
      const a = fakeActor(id, server);
      made.push(a);
      return a as unknown as ActorRef;
    },
  });
  return { p, made };
}

// Only the fields the pool relays; the rest of IncomingCall is the peer's business.
const call = { method: 'm', args: [], requestId: 'r', stream: false } as unknown as IncomingCall;

describe('the upscale hint', () => {
  it('names the wanted count during the delay, and the decision still waits for the delay', () => {
    const ctx = (t: number) => ({
      config,
      currentReplicas: 1,
      runningReplicas: 1,
      totalRequests: 7,
      queuedNow: 0,
      metrics: { ongoing: 7, queued: 0, custom: {}, reporting: 1 },
      nowMs: t * 1000,
    });
    const waiting = defaultAutoscalingPolicy(ctx(0), {});
    expect(waiting).toMatchObject({ replicas: 1, pending: 4, reason: 'upscale-delay' });
    expect(defaultAutoscalingPolicy(ctx(2), waiting.state)).toMatchObject({ replicas: 4, reason: 'scale-up' });
    expect(defaultAutoscalingPolicy(ctx(2), waiting.state).pending).toBeUndefined();
  });

  it('AutoscalingStateManager exposes it until the decision', () => {
    const m = new AutoscalingStateManager(config, undefined);
    m.report(0, () => ({ ongoing: 7, queued: 0, custom: {}, reporting: 1 }));
    expect(m.update(0, 1, 1, 0)).toBeUndefined();
    expect(m.pendingUp).toBe(4);
    expect(m.update(2000, 1, 1, 0)).toMatchObject({ from: 1, to: 4, reason: 'scale-up' });
    expect(m.pendingUp).toBeUndefined();
  });
});

describe('WarmPool', () => {
  it('warms up to max, hands a worker out under the replica id, and relays its handle calls there', async () => {
    const { p, made } = pool();
    p.warm(5, 0);
    expect(made).toHaveLength(3);
    p.warm(2, 0);
    expect(made).toHaveLength(3);
    const seen: string[] = [];
    const server: CallServer = {
      admit: () => null,
      release: () => {},
      stream: async function* () {},
      unary: async (c) => {
        seen.push(c.requestId);
        return 'ok';
      },
    };
    const taken = p.take('app.Dep.1234', server)!;
    expect(taken.id).toBe('app.Dep.1234');
    expect(p.size).toBe(2);
    expect(await made[0]!.server.unary(call, new AbortController().signal)).toBe('ok');
    expect(seen).toEqual(['r']);
  });

  it('stops workers nobody took within idleMs; a warm worker that dies is dropped', async () => {
    const { p, made } = pool(1000);
    p.warm(2, 0);
    p.expire(500);
    expect(p.size).toBe(2);
    await made[0]!.kill();
    await Promise.resolve();
    expect(p.size).toBe(1);
    p.expire(1000);
    expect(p.size).toBe(0);
    expect(made[1]!.killed).toBe(true);
    expect(p.take('x', {} as CallServer)).toBeUndefined();
  });

  it('a worker whose relay is not bound yet refuses handle calls', () => {
    const { p, made } = pool();
    p.warm(1, 0);
    expect(() => made[0]!.server.admit(call)).toThrow(/before it became a replica/);
  });
});
