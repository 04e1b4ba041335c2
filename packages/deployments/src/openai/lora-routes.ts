/**
 * LoRA adapters on the OpenAI front, as vLLM serves them: POST /v1/load_lora_adapter and
 * /v1/unload_lora_adapter ({ lora_name, lora_path }; an admin key when keys are on), adapters listed in
 * /v1/models with `parent` (the base model's name), and a request's `model` naming an adapter runs on it.
 * `lora_modules` (name=path,...) are loaded at start-up (loadLoraModules).
 */
import type { HttpRequestLike } from '@flotilla/core';
import type { LLMEngine } from '@flotilla/engine';
import {
  AuthenticationError,
  InvalidParameterError,
  LLMServerConfigError,
  MalformedRequestError,
  ModelNotFoundError,
} from '../errors.js';
import type { GenerationContext, HandlerContext, HttpChunk } from '../handler-context.js';
import { checkModelName } from '../model-name.js';

export interface LoraModule {
  name: string;
  path: string;
}

/** `lora_modules`: 'name=path,name=path' (vLLM's CLI form) or { name: path }; `option` names it in errors. */
export function parseLoraModules(
  v: string | Record<string, string> | undefined,
  option = 'lora_modules',
): LoraModule[] {
  if (v === undefined || v === '') return [];
  const entries =
    typeof v === 'string'
      ? v.split(',').map((item) => {
          const eq = item.indexOf('=');
          if (eq <= 0 || eq === item.length - 1)
            throw new LLMServerConfigError(`${option}: '${item}' is not name=path (write name=path,name=path)`);
          return [item.slice(0, eq).trim(), item.slice(eq + 1).trim()] as const;
        })
      : Object.entries(v);
  const seen = new Set<string>();
  return entries.map(([name, path]) => {
    if (seen.has(name)) throw new LLMServerConfigError(`${option}: '${name}' is given twice`);
    seen.add(name);
    return { name, path };
  });
}

/** The engine's LoRA slots for these server options: maxLoras (default 4 when lora_modules are given, else none). */
export function loraEngineOptions(o: {
  loraModules?: string | Record<string, string>;
  maxLoras?: number;
  maxLoraRank?: number;
}): { maxLoras?: number; maxLoraRank?: number } {
  const modules = parseLoraModules(o.loraModules).length;
  const maxLoras = o.maxLoras ?? (modules > 0 ? Math.max(4, modules) : 0);
  if (!Number.isInteger(maxLoras) || maxLoras < 0)
    throw new LLMServerConfigError(`max_loras must be a non-negative integer, got ${maxLoras}`);
  if (maxLoras === 0) return {};
  return { maxLoras, ...(o.maxLoraRank !== undefined ? { maxLoraRank: o.maxLoraRank } : {}) };
}

/** Loads the start-up adapters; a bad one fails the load (the server does not come up half-configured). */
export async function loadLoraModules(engine: LLMEngine, modules: LoraModule[]): Promise<void> {
  for (const m of modules) {
    try {
      await engine.loadAdapter(m.name, m.path);
    } catch (err) {
      throw new LLMServerConfigError(`lora_modules: adapter '${m.name}' (${m.path}): ${(err as Error).message}`);
    }
  }
}

/**
 * The adapter a request's `model` names, or undefined for the base model. Any other name is checked as
 * model-name.ts checks it, strictly when the server has LoRA slots: it then serves several models, and a
 * mistyped adapter name must be 404 model_not_found, not quietly the base model.
 */
export function resolveAdapter(
  requested: string | undefined,
  ctx: GenerationContext,
  param = 'model',
): string | undefined {
  const adapters = engineOf(ctx)?.adapters ?? null;
  if (requested !== undefined && requested !== ctx.model.name && adapters?.has(requested)) return requested;
  checkModelName(requested, adapters ? { ...ctx.model, strictName: true } : ctx.model, param);
  return undefined;
}

/** /v1/models entries of the loaded adapters. */
export function adapterModels(ctx: GenerationContext, maxModelLen: number) {
  return (engineOf(ctx)?.listAdapters() ?? []).map((a) => ({
    id: a.name,
    object: 'model',
    created: ctx.model.createdS,
    owned_by: 'flotilla',
    root: ctx.admin ? a.path : a.name,
    parent: ctx.model.name,
    max_model_len: maxModelLen,
  }));
}

/** POST /v1/load_lora_adapter { lora_name, lora_path }. */
export async function* loadLoraAdapter(req: HttpRequestLike, ctx: HandlerContext): AsyncGenerator<HttpChunk> {
  requireAdmin(ctx);
  const name = field(req.body, 'lora_name');
  const path = field(req.body, 'lora_path');
  if (!ctx.engine.adapters)
    throw new InvalidParameterError(
      'lora_name',
      'this server has no LoRA slots (start it with max_loras or lora_modules)',
    );
  try {
    await ctx.engine.loadAdapter(name, path);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'E_ADAPTER_CONFIG') throw new InvalidParameterError('lora_name', e.message ?? 'cannot be loaded');
    if (e.code === 'E_ADAPTER_MISMATCH')
      throw new InvalidParameterError('lora_path', e.message ?? 'does not fit the model');
    throw err;
  }
  yield {
    status: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    body: `Success: LoRA adapter '${name}' added successfully.`,
  };
}

/** POST /v1/unload_lora_adapter { lora_name }: requests running on it finish with it. */
export async function* unloadLoraAdapter(req: HttpRequestLike, ctx: HandlerContext): AsyncGenerator<HttpChunk> {
  requireAdmin(ctx);
  const name = field(req.body, 'lora_name');
  if (!ctx.engine.adapters?.has(name))
    throw new ModelNotFoundError(`The LoRA adapter '${name}' is not loaded.`, 'lora_name');
  await ctx.engine.unloadAdapter(name);
  yield {
    status: 200,
    headers: { 'content-type': 'text/plain; charset=utf-8' },
    body: `Success: LoRA adapter '${name}' removed successfully.`,
  };
}

/** The server's own engine (LLMServer's context); a graph behind a front has none, and no adapters. */
function engineOf(ctx: GenerationContext): LLMEngine | undefined {
  return (ctx as Partial<HandlerContext>).engine;
}

function requireAdmin(ctx: HandlerContext): void {
  if (!ctx.admin) throw new AuthenticationError('loading and unloading LoRA adapters needs an admin key');
}

function field(body: unknown, key: string): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new MalformedRequestError('the body must be a JSON object with lora_name (and lora_path to load)');
  const v = (body as Record<string, unknown>)[key];
  if (typeof v !== 'string' || v === '') throw new InvalidParameterError(key, 'must be a non-empty string');
  return v;
}
