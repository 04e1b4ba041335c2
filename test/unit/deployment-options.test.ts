import { describe, expect, it } from 'vitest';
import {
  deployment,
  getDeploymentDefinition,
  Application,
  buildGraph,
  DeploymentConfigError,
  type DeploymentHandle,
} from '@flotilla/core';
import { resolveDeploymentOptions, validateDeploymentOptions } from '../../packages/core/src/config.js';
import { isHandleDescriptor } from '../../packages/core/src/handle.js';

@deployment({ numReplicas: 2 })
class Leaf {
  constructor(readonly model: string) {}
}

@deployment({ name: 'Root', maxOngoingRequests: 7 })
class RootDeployment {
  constructor(
    readonly opts: { a: DeploymentHandle<Leaf>; b: DeploymentHandle<Leaf> },
    readonly list: DeploymentHandle<Leaf>[],
  ) {}
}

describe('@deployment', () => {
  it('records the name, options and the defining module', () => {
    const def = getDeploymentDefinition(Leaf)!;
    expect(def.name).toBe('Leaf');
    expect(def.options).toEqual({ numReplicas: 2 });
    expect(def.modulePath).toBe(new URL(import.meta.url).pathname);
    expect(getDeploymentDefinition(RootDeployment)!.name).toBe('Root');
  });

  it('fills documented defaults', () => {
    expect(resolveDeploymentOptions('X', [{}], 'X')).toEqual({
      name: 'X',
      numReplicas: 1,
      maxOngoingRequests: 5,
      maxQueuedRequests: 100,
      routing: 'pow2',
      autoscaling: undefined,
      resources: { cpus: 0, gpus: 0, memoryMb: 0 },
      placement: 'thread',
      healthCheckPeriodS: 10,
      healthCheckTimeoutS: 30,
      healthCheckFailureThreshold: 3,
      gracefulShutdownTimeoutS: 20,
      maxConstructorRetries: 3,
      userConfig: undefined,
    });
    expect(resolveDeploymentOptions('X', [{ numReplicas: 'auto' }], 'X').autoscaling).toEqual({
      minReplicas: 1,
      maxReplicas: 100,
      initialReplicas: 1,
      targetOngoingRequests: 2,
      upscaleDelayS: 30,
      downscaleDelayS: 600,
      metricsIntervalS: 1,
      lookBackPeriodS: 5,
      upscalingFactor: 1,
      downscalingFactor: 1,
    });
    expect(() => resolveDeploymentOptions('X', [{ autoscaling: { policy: 'fastest' as never } }], 'X')).toThrow(
      /autoscaling.policy must be a function, 'default' or 'llm'/,
    );
    expect(resolveDeploymentOptions('X', [{ autoscaling: { policy: 'llm' } }], 'X').autoscaling!.policy).toBeTypeOf(
      'function',
    );
  });

  it('rejects bad options at decoration time with the class and the option named', () => {
    const bad = (options: object) => () => {
      @deployment(options as never)
      class Bad {}
      return Bad;
    };
    expect(bad({ maxOngoingRequests: 0 })).toThrow(
      /@deployment\(Bad\): maxOngoingRequests must be an integer >= 1, got 0/,
    );
    expect(bad({ placement: 'gpu' })).toThrow(/placement must be 'thread' or 'process'/);
    expect(bad({ resources: { gpus: 1.5 } })).toThrow(/gpus above 1 must be a whole number/);
    expect(bad({ numReplicas: 'many' })).toThrow(DeploymentConfigError);
    expect(bad({ autoscaling: { upscaleDelay: 1 } })).toThrow(/unknown autoscaling option 'upscaleDelay'/);
    expect(() => validateDeploymentOptions({ maxQueuedRequests: -1 }, 'x')).not.toThrow();
    // Shedding by default: 2 x maxOngoingRequests x starting replicas, at least 100; -1 stays unbounded.
    const queued = (o: Parameters<typeof validateDeploymentOptions>[0]) =>
      resolveDeploymentOptions('X', [o], 'X').maxQueuedRequests;
    expect(queued({ maxOngoingRequests: 16 })).toBe(100);
    expect(queued({ maxOngoingRequests: 256 })).toBe(512);
    expect(queued({ maxOngoingRequests: 30, numReplicas: 3 })).toBe(180);
    expect(queued({ maxOngoingRequests: 30, autoscaling: { minReplicas: 0, initialReplicas: 0 } })).toBe(100);
    expect(queued({ maxOngoingRequests: 30, autoscaling: { initialReplicas: 4, maxReplicas: 8 } })).toBe(240);
    expect(queued({ maxOngoingRequests: 30, maxQueuedRequests: -1 })).toBe(-1);
    expect(() => validateDeploymentOptions({ maxQueuedRequests: -2 }, 'x')).toThrow(/or -1/);
  });
});

describe('bind graphs', () => {
  it('turns nested bound deployments into handle descriptors and dedupes names', () => {
    const shared = Leaf.bind('shared');
    const root = RootDeployment.bind({ a: shared, b: Leaf.bind('other') }, [shared]);
    expect(root).toBeInstanceOf(Application);
    const graph = buildGraph('app', root);
    expect(graph.ingress).toBe('Root');
    expect(graph.nodes.map((n) => n.name)).toEqual(['Root', 'Leaf_1', 'Leaf']);
    const [opts, list] = graph.nodes[0]!.args as [Record<string, unknown>, unknown[]];
    expect(opts.a).toEqual({ $flotillaHandle: { app: 'app', deployment: 'Leaf' } });
    expect(isHandleDescriptor(opts.b)).toBe(true);
    expect(list[0]).toEqual(opts.a);
    expect(graph.nodes.find((n) => n.name === 'Leaf')!.args).toEqual(['shared']);
  });

  it('.options() overrides at bind time', () => {
    const app = Leaf.bind('m').options({ numReplicas: 4, name: 'Big' });
    const graph = buildGraph('app', app);
    expect(graph.ingress).toBe('Big');
    expect(graph.nodes[0]!.overrides).toMatchObject({ numReplicas: 4 });
  });

  it('rejects a class that was not bound', () => {
    expect(() => buildGraph('app', Leaf as never)).toThrow(/did you forget @deployment or \.bind\(\)/);
  });
});
