/**
 * core's wire registry (errors.ts registerErrorClasses, actor/wire-error.ts): an error crosses as JSON
 * (what the cluster sends) and comes back as its own class with its code and fields — core's classes,
 * registered ones with any constructor, the engine's (registered without importing core) — while an
 * unregistered error still arrives as UserCodeError.
 */
import { describe, expect, it } from 'vitest';
import { errorFromWire, errorToWire } from '../../packages/core/src/actor/wire-error.js';
import {
  BadRequestError,
  BackPressureError,
  registerErrorClasses,
  registeredErrorClass,
  UserCodeError,
} from '../../packages/core/src/errors.js';
import { InvalidParameterError, RateLimitError } from '../../packages/deployments/src/errors.js';
import { PiiBlockedError } from '../../packages/deployments/src/pii/pii-errors.js';
import { ModelFormatError, SamplingParamsError } from '../../packages/engine/src/errors.js';
import { SpeculativeConfigError } from '../../packages/engine/src/spec-decode/errors.js';

const cross = (err: unknown) => errorFromWire(JSON.parse(JSON.stringify(errorToWire(err))));

class TestQuotaError extends Error {
  readonly code = 'E_TEST_QUOTA';
  readonly handler = () => 'not sent';
  constructor(
    readonly tenant: string,
    readonly left: number,
    readonly limits: { perDay: number },
  ) {
    super(`${tenant} has ${left} left`);
    this.name = 'TestQuotaError';
  }
}

describe('the wire error registry', () => {
  it('keeps core classes as they were', () => {
    const back = cross(new BackPressureError('full', { retryAfterS: 2 })) as BackPressureError;
    expect(back).toBeInstanceOf(BackPressureError);
    expect([back.code, back.httpStatus, back.data]).toEqual(['BACK_PRESSURE', 503, { retryAfterS: 2 }]);
    expect(errorToWire(new BadRequestError('bad'))).not.toHaveProperty('fields');
  });

  it('rebuilds a registered class without calling its constructor, with its JSON-safe fields', () => {
    registerErrorClasses({ TestQuotaError });
    const back = cross(new TestQuotaError('acme', 3, { perDay: 10 })) as TestQuotaError;
    expect(back).toBeInstanceOf(TestQuotaError);
    expect([back.name, back.code, back.message, back.tenant, back.left, back.limits]).toEqual([
      'TestQuotaError',
      'E_TEST_QUOTA',
      'acme has 3 left',
      'acme',
      3,
      { perDay: 10 },
    ]);
    expect(back.handler).toBeUndefined(); // a function does not cross
    expect(back.stack).toContain('TestQuotaError');
  });

  it('carries the engine and deployments classes (registered when their modules load)', () => {
    const sp = cross(new SamplingParamsError('topP', 'must be > 0', { got: 0 })) as SamplingParamsError;
    expect(sp).toBeInstanceOf(SamplingParamsError);
    expect([sp.code, sp.param, sp.problem, sp.data]).toEqual([
      'E_SAMPLING_PARAMS',
      'topP',
      'must be > 0',
      { param: 'topP', got: 0 },
    ]);
    const mf = cross(new ModelFormatError('/m.bin', 'bad magic')) as ModelFormatError;
    expect([mf.constructor, mf.file, mf.problem, mf.message]).toEqual([
      ModelFormatError,
      '/m.bin',
      'bad magic',
      '/m.bin: bad magic',
    ]);
    expect(cross(new SpeculativeConfigError('k out of range'))).toBeInstanceOf(SpeculativeConfigError);
    const ip = cross(new InvalidParameterError('max_tokens', 'must be >= 1')) as InvalidParameterError;
    expect([ip.constructor, ip.code, ip.param, ip.status, ip.type]).toEqual([
      InvalidParameterError,
      'E_INVALID_PARAMETER',
      'max_tokens',
      400,
      'invalid_request_error',
    ]);
    expect((cross(new RateLimitError('slow down', 7)) as RateLimitError).retryAfterS).toBe(7);
    const pii = cross(new PiiBlockedError(['email'])) as PiiBlockedError;
    expect(pii).toBeInstanceOf(PiiBlockedError);
    expect(pii).toBeInstanceOf(InvalidParameterError);
    expect([pii.code, pii.param, pii.kinds]).toEqual(['E_PII_BLOCKED', 'prompt', ['email']]);
  });

  it('sends an unregistered error as UserCodeError, and core names cannot be taken', () => {
    class Unlisted extends Error {
      code = 'E_UNLISTED';
    }
    const back = cross(new Unlisted('x'));
    expect(back).toBeInstanceOf(UserCodeError);
    expect((back as UserCodeError).data).toEqual({ originalName: 'Error' });
    expect(() => registerErrorClasses({ BadRequestError: Unlisted })).toThrow(/core error class/);
    expect(registeredErrorClass('BadRequestError')).toBe(BadRequestError);
  });
});
