import { describe, expect, it } from 'vitest';
import { ActorDiedError, BackPressureError, UnavailableError } from '../../packages/core/src/errors.js';
import { KvModelMismatchError, KvPayloadError, SamplingParamsError } from '../../packages/engine/src/index.js';
import { ModelUnavailableError } from '../../packages/deployments/src/errors.js';
import { transferFailure } from '../../packages/deployments/src/pd/pd-router.js';

describe('transferFailure (what PdRouter answers with local prefill)', () => {
  it('counts dead, unavailable or full replicas and refused payloads', () => {
    expect(transferFailure(new ActorDiedError('gone'))).toBe(true);
    expect(transferFailure(new UnavailableError('down'))).toBe(true);
    expect(transferFailure(new BackPressureError('full'))).toBe(true);
    expect(transferFailure(new ModelUnavailableError('loading'))).toBe(true);
    expect(transferFailure(new KvPayloadError('not a payload'))).toBe(true);
    expect(transferFailure(new KvModelMismatchError('other model'))).toBe(true);
  });

  it('leaves errors of the request itself alone', () => {
    expect(transferFailure(new SamplingParamsError('temperature', 'must be >= 0'))).toBe(false);
    expect(transferFailure(Object.assign(new Error('too big'), { code: 'E_KV_CAPACITY' }))).toBe(false);
    expect(transferFailure(new Error('plain'))).toBe(false);
    expect(transferFailure(null)).toBe(false);
  });
});
