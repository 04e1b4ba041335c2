import { describe, expect, it } from 'vitest';
import { configOverrides, parseServeConfig, resolveDeploymentOptions } from '../../packages/core/src/config.js';
import { DeploymentConfigError } from '../../packages/core/src/errors.js';

describe('parseServeConfig', () => {
  it('reads Ray-style YAML with snake_case keys, keeping user_config and args verbatim', () => {
    const config = parseServeConfig(`
http_options: { host: 0.0.0.0, port: 8080 }
applications:
  - name: default
    route_prefix: /
    import_path: examples/summarizer.ts:app
    args: { model_path: /models/x }
    deployments:
      - name: Small
        num_replicas: 2
        max_ongoing_requests: 8
        resources: { gpus: 0.5, memory_mb: 512 }
        user_config: { temperature_max: 2 }
`);
    expect(config.httpOptions).toEqual({ host: '0.0.0.0', port: 8080 });
    const app = config.applications[0]!;
    expect(app).toMatchObject({
      name: 'default',
      routePrefix: '/',
      importPath: 'examples/summarizer.ts:app',
      args: { model_path: '/models/x' },
    });
    expect(configOverrides(config, 'default', 'Small')).toEqual({
      numReplicas: 2,
      maxOngoingRequests: 8,
      resources: { gpus: 0.5, memoryMb: 512 },
      userConfig: { temperature_max: 2 },
    });
    expect(configOverrides(config, 'default', 'Other')).toEqual({});
    expect(configOverrides(undefined, 'default', 'Small')).toEqual({});
  });

  it('reads JSON with camelCase keys', () => {
    const config = parseServeConfig(
      '{"applications":[{"name":"a","deployments":[{"name":"X","numReplicas":"auto"}]}]}',
    );
    expect(configOverrides(config, 'a', 'X')).toEqual({ numReplicas: 'auto' });
  });

  it('reports where a bad entry is', () => {
    expect(() =>
      parseServeConfig(
        'applications:\n  - name: a\n    deployments:\n      - name: X\n        num_replicas: -2\n',
        'serve.yaml',
      ),
    ).toThrow(
      /serve\.yaml: applications\[0\] \(a\) deployments\[0\] \(X\): numReplicas must be an integer >= 0, got -2/,
    );
    expect(() =>
      parseServeConfig('applications:\n  - name: a\n    deployments:\n      - name: X\n        replicas: 2\n'),
    ).toThrow(/unknown option 'replicas'/);
    expect(() => parseServeConfig('foo: [', 'bad.yaml')).toThrow(DeploymentConfigError);
    expect(() => parseServeConfig('{}')).toThrow(/'applications' list/);
    expect(() => parseServeConfig('applications: [{}]')).toThrow(/applications\[0\]: name is required/);
  });
});

describe('resolveDeploymentOptions', () => {
  it('layers decorator < bind-time < config file, merging resources', () => {
    const o = resolveDeploymentOptions(
      'X',
      [
        { numReplicas: 2, resources: { cpus: 1 }, userConfig: { a: 1 } },
        { maxOngoingRequests: 10, resources: { gpus: 0.5 } },
        { numReplicas: 3, userConfig: { a: 2 } },
      ],
      'X',
    );
    expect(o).toMatchObject({
      numReplicas: 3,
      maxOngoingRequests: 10,
      resources: { cpus: 1, gpus: 0.5, memoryMb: 0 },
      userConfig: { a: 2 },
    });
  });

  it('validates the merged result (min above max across layers)', () => {
    expect(() =>
      resolveDeploymentOptions('X', [{ autoscaling: { minReplicas: 3 } }, { autoscaling: { maxReplicas: 2 } }], 'X'),
    ).toThrow(/minReplicas \(3\) exceeds maxReplicas \(2\)/);
  });
});
