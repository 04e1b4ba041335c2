import { describe, expect, it } from 'vitest';
import { parseAppSpec, parseKeyValues } from '../../../packages/core/src/cli/app-loader.js';
import { renderStatus } from '../../../packages/core/src/cli/status-table.js';
import { CliError } from '../../../packages/core/src/cli/cli-error.js';

describe('serve CLI parts', () => {
  it('parses FILE:EXPORT with a default export name', () => {
    expect(parseAppSpec('examples/default.ts:app', '/repo')).toEqual({
      file: '/repo/examples/default.ts',
      given: 'examples/default.ts',
      exportName: 'app',
    });
    expect(parseAppSpec('x.ts', '/repo').exportName).toBe('app');
    expect(parseAppSpec('x.ts:builder', '/repo').exportName).toBe('builder');
  });

  it('parses key=value arguments and rejects others', () => {
    expect(parseKeyValues(['model=/a=b', 'n=2'])).toEqual({ model: '/a=b', n: '2' });
    expect(() => parseKeyValues(['oops'])).toThrow(CliError);
  });

  it('renders status as a table with failure causes', () => {
    const text = renderStatus(
      {
        startedAtMs: 0,
        http: 'http://127.0.0.1:8000',
        applications: [
          {
            name: 'app',
            routePrefix: '/',
            status: 'DEPLOY_FAILED',
            deployments: [
              {
                name: 'Big',
                status: 'FAILED',
                message: 'constructor threw: no weights',
                targetReplicas: 1,
                replicas: [],
                queued: 0,
                ongoing: 0,
              },
              {
                name: 'Small',
                status: 'HEALTHY',
                targetReplicas: 1,
                queued: 0,
                ongoing: 2,
                replicas: [
                  {
                    id: 'r1',
                    state: 'RUNNING',
                    placement: 'thread',
                    node: 'local',
                    pid: 7,
                    ongoing: 2,
                    startedAtMs: 0,
                  },
                ],
              },
            ],
          },
        ],
      },
      125_000,
    );
    expect(text).toContain('up 2m5s');
    expect(text).toMatch(/Small\s+HEALTHY\s+1\/1\s+2\s+0\s+r1\s+RUNNING\s+thread\s+7/);
    expect(text).toContain('Big: constructor threw: no weights');
  });
});
