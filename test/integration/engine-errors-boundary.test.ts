/**
 * Errors keep their class across replica boundaries: a deployment in a thread replica and one in a process
 * replica run the real engine on stories260K and throw its typed errors (and the OpenAI front end's); the
 * caller, a handle in the test's process, catches the same classes with their code and fields
 * (`param`, `problem`, `data`, `file`), because the engine and the deployments package register their
 * classes with core's wire registry when they load — in the replica as in the caller.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeploymentHandle, Ingress, type ServeInstance, startServe, UserCodeError } from '@flotilla/core';
import { InvalidParameterError } from '@flotilla/deployments';
import {
  ContextLengthError,
  EngineError,
  InvalidPromptError,
  ModelFormatError,
  SamplingParamsError,
} from '@flotilla/engine';
import { engineHost } from '../fixtures/apps/engine-errors.js';
import { describeWithModels, models } from '../helpers/models.js';

/** What a rejected call threw. */
async function caught(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (err) {
    return err;
  }
  throw new Error('the call succeeded');
}

describeWithModels('engine errors across replica boundaries (stories260K)', () => {
  let instance: ServeInstance;
  beforeAll(async () => {
    instance = await startServe({
      applications: [
        { name: 'in-thread', routePrefix: '/in-thread', app: engineHost(models.stories260K, 'thread') },
        { name: 'in-process', routePrefix: '/in-process', app: engineHost(models.stories260K, 'process') },
      ],
    });
  }, 120_000);
  afterAll(async () => {
    await instance?.shutdown();
  });

  it('a generic proxy answers an engine request error with its status and code (HTTP 400, not 500)', async () => {
    const ingress = await Ingress.start(instance, { http: { port: 0 }, grpc: false, events: instance.events });
    try {
      const res = await fetch(`${ingress.http!.url}/in-process/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(['Once upon a time', { maxTokens: 100_000 }]),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('E_CONTEXT_LENGTH');
    } finally {
      await ingress.close(500);
    }
  }, 60_000);

  describe.each(['in-thread', 'in-process'] as const)('%s', (app) => {
    let handle: DeploymentHandle;
    beforeAll(() => {
      handle = instance.getHandle(app);
    });

    it('runs in the placement asked for', async () => {
      const pid = (await handle.pid()) as number;
      if (app === 'in-process') expect(pid).not.toBe(process.pid);
      else expect(pid).toBe(process.pid);
      expect(await handle.generate('Once upon a time', { maxTokens: 3, temperature: 0 })).not.toBe('');
    });

    it('max_tokens beyond the context: ContextLengthError naming maxTokens, with its data', async () => {
      const err = await caught(handle.generate('Once upon a time', { maxTokens: 100_000 }));
      expect(err).toBeInstanceOf(ContextLengthError);
      expect(err).toBeInstanceOf(SamplingParamsError);
      expect(err).toBeInstanceOf(EngineError);
      expect(err).toBeInstanceOf(Error);
      expect(err).not.toBeInstanceOf(UserCodeError);
      const e = err as ContextLengthError;
      expect(e.name).toBe('ContextLengthError');
      expect(e.code).toBe('E_CONTEXT_LENGTH');
      expect(e.param).toBe('maxTokens');
      expect(e.problem).toMatch(/exceed the model's context of 512 tokens/);
      expect(e.message).toBe(`maxTokens: ${e.problem}`);
      expect(e.data).toMatchObject({ param: 'maxTokens', maxTokens: 100_000, maxModelLen: 512 });
      expect(e.stack).toContain('ContextLengthError');
    });

    it('a bad sampling parameter and a bad prompt keep their classes', async () => {
      const bad = (await caught(handle.generate('x', { topP: 0 }))) as SamplingParamsError;
      expect(bad).toBeInstanceOf(SamplingParamsError);
      expect(bad).not.toBeInstanceOf(ContextLengthError);
      expect([bad.code, bad.param]).toEqual(['E_SAMPLING_PARAMS', 'topP']);
      const empty = (await caught(handle.generate({ tokenIds: [] }, {}))) as InvalidPromptError;
      expect(empty).toBeInstanceOf(InvalidPromptError);
      expect([empty.code, empty.param]).toEqual(['E_INVALID_PROMPT', 'prompt']);
      expect(empty.message).toBe('prompt: is empty (no tokens)');
    });

    it('an error class with its own constructor arguments (ModelFormatError) keeps its fields', async () => {
      const err = (await caught(handle.load('/nonexistent/model.bin'))) as ModelFormatError;
      expect(err).toBeInstanceOf(ModelFormatError);
      expect(err.code).toBe('E_MODEL_FORMAT');
      expect(err.file).toBe('/nonexistent/model.bin');
      expect(typeof err.problem).toBe('string');
    });

    it("the OpenAI front end's errors keep their class and the API's name for the field", async () => {
      const err = (await caught(handle.parseCompletion({ prompt: 'x', max_tokens: -3 }))) as InvalidParameterError;
      expect(err).toBeInstanceOf(InvalidParameterError);
      expect([err.code, err.param, err.status, err.type]).toEqual([
        'E_INVALID_PARAMETER',
        'max_tokens',
        400,
        'invalid_request_error',
      ]);
      expect(err.message).toBe('max_tokens: must be >= 1, got -3');
      expect(await handle.parseCompletion({ prompt: 'x', max_tokens: 7 })).toBe('7');
    });
  });
});
