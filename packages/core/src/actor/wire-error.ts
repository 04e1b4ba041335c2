/**
 * Errors as they cross a thread, process or network boundary: `{ name, code, message, stack, data,
 * fields }`, rebuilt on the other side as the same class when core has it (errors.ts `errorClasses`)
 * or a package registered it (`registerErrorClasses`); anything else arrives as UserCodeError with the
 * original name in data.originalName.
 */
import { errorClasses, FlotillaError, registeredErrorClass, UserCodeError } from '../errors.js';

/** An error as it crosses a boundary; rebuilt as the same class by errorFromWire (core's or a registered one). */
export interface WireError {
  name: string;
  code: string;
  message: string;
  stack?: string;
  data?: Record<string, unknown>;
  /** A registered class's other own fields (e.g. `param`, `status`), JSON-safe ones only. */
  fields?: Record<string, unknown>;
}

export function errorToWire(err: unknown): WireError {
  if (err instanceof FlotillaError) {
    const wire: WireError = { name: err.name, code: err.code, message: err.message, stack: err.stack, data: err.data };
    const fields = wireFields(err);
    if (fields) wire.fields = fields;
    return wire;
  }
  if (err instanceof Error) {
    const Cls = registeredErrorClass(err.name);
    const code = (err as { code?: unknown }).code;
    if (Cls && err instanceof Cls && typeof code === 'string') {
      const wire: WireError = { name: err.name, code, message: err.message };
      if (err.stack) wire.stack = err.stack;
      const data = (err as { data?: unknown }).data;
      if (isPlainObject(data)) wire.data = data;
      const fields = wireFields(err);
      if (fields) wire.fields = fields;
      return wire;
    }
    return {
      name: 'UserCodeError',
      code: 'USER_ERROR',
      message: err.message,
      stack: err.stack,
      data: { originalName: err.name },
    };
  }
  return { name: 'UserCodeError', code: 'USER_ERROR', message: String(err) };
}

/** Rebuilds the error as its own class when core has it or a package registered it; otherwise UserCodeError. */
export function errorFromWire(wire: WireError): Error {
  const Core = (errorClasses as Record<string, typeof FlotillaError>)[wire.name];
  if (Core || !registeredErrorClass(wire.name)) {
    const err = new (Core ?? UserCodeError)(wire.message, wire.data);
    if (Core && wire.fields) Object.assign(err, wire.fields);
    if (wire.stack) err.stack = wire.stack;
    return err;
  }
  // A registered class may take any constructor arguments (ModelFormatError(file, problem), ...), so the
  // instance is built without calling it and gets the fields its constructor had set on the sender's side.
  const Cls = registeredErrorClass(wire.name)!;
  const err = Object.create(Cls.prototype) as Error & Record<string, unknown>;
  Object.defineProperty(err, 'message', { value: wire.message, writable: true, configurable: true });
  err.name = wire.name;
  err.code = wire.code;
  if (wire.data) err.data = wire.data;
  if (wire.fields) Object.assign(err, wire.fields);
  if (wire.stack) Object.defineProperty(err, 'stack', { value: wire.stack, writable: true, configurable: true });
  return err;
}

/** Keys every wire error carries in its own slots; a core class's httpStatus is implied by the class too. */
const STANDARD_KEYS = new Set(['name', 'code', 'message', 'stack', 'data']);
const CORE_KEYS = new Set([...STANDARD_KEYS, 'httpStatus']);

/** An error's other own enumerable fields whose values survive JSON (the cluster sends errors as JSON). */
function wireFields(err: Error): Record<string, unknown> | undefined {
  const skip = Object.hasOwn(errorClasses, err.name) ? CORE_KEYS : STANDARD_KEYS;
  let out: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(err)) {
    if (skip.has(key) || !jsonSafe(value, 0)) continue;
    out ??= {};
    out[key] = value;
  }
  return out;
}

function jsonSafe(v: unknown, depth: number): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (depth > 4) return false;
  if (Array.isArray(v)) return v.every((x) => jsonSafe(x, depth + 1));
  return isPlainObject(v) && Object.values(v).every((x) => jsonSafe(x, depth + 1));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}
