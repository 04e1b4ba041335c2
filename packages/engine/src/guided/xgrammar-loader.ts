/**
 * Loads XGrammar's WebAssembly build (@mlc-ai/web-xgrammar, pinned) as a fresh, private instance.
 *
 * The bundle is UMD although its package says "type": "module": imported as ESM it needs `require` and
 * `__filename` on globalThis and leaves its exports on globalThis.xgrammar, and every import of the same
 * URL is the same instance. Here its source is run as the CommonJS module it also is, through
 * `new Function` with its own `exports`, `require` and `__filename`: no globals are touched, and each
 * call gives a separate WebAssembly instance. Separate instances matter because XGrammar reports a bad
 * grammar by aborting the instance (a "[FATAL] file.cc:line: message" line on its stderr, then a thrown
 * RuntimeError) without unwinding its C++ stack: an instance survives a few aborts, then corrupts
 * ("memory access out of bounds" after ~30 in our tests). grammar-checker.ts therefore tries grammars
 * on a disposable instance before the serving one ever sees them.
 *
 * One line of the bundle is replaced: Emscripten's `await import('module')` (for createRequire) becomes
 * a call returning node:module, since code made by `new Function` inside a module that a test runner
 * evaluated through node:vm has no dynamic import (it fails "A dynamic import callback was not
 * specified"). The line must occur exactly once, or loading fails (the version is pinned).
 *
 * The instance's stderr is its own: Emscripten binds `console.error` when the instance starts, so the
 * loader puts a sink there for that moment. The sink forwards to the real console.error unless a caller
 * is collecting messages (capture()).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { CompiledGrammar, Grammar, GrammarCompiler, GrammarMatcher, TokenizerInfo } from '@mlc-ai/web-xgrammar';

/** The exports of one instance (the classes of lib/xgrammar.d.ts). */
export interface XGrammarModule {
  Grammar: typeof Grammar;
  GrammarCompiler: typeof GrammarCompiler;
  CompiledGrammar: typeof CompiledGrammar;
  GrammarMatcher: typeof GrammarMatcher;
  TokenizerInfo: typeof TokenizerInfo;
}

const require = createRequire(import.meta.url);
const DYNAMIC_IMPORT = "await import('module')";
let source: { file: string; code: string } | undefined;
/** Loads one at a time: console.error is swapped while an instance starts. */
let queue: Promise<unknown> = Promise.resolve();

export class XGrammarInstance {
  /** Aborts seen (each leaks some of the instance's stack). */
  aborts = 0;
  private collecting: string[] | null = null;

  constructor(
    readonly xg: XGrammarModule,
    private readonly forward: (...args: unknown[]) => void,
  ) {}

  /** Where the instance's stderr goes (bound as its console.error). */
  readonly sink = (...args: unknown[]): void => {
    if (this.collecting) this.collecting.push(args.map(String).join(' '));
    else this.forward(...args);
  };

  /**
   * Runs `fn` (synchronous calls into this instance) collecting its stderr; returns the result, or
   * throws the abort as GrammarAbort with XGrammar's own message.
   */
  capture<T>(fn: () => T): T {
    this.collecting = [];
    try {
      return fn();
    } catch (err) {
      const lines = this.collecting;
      if (!isAbort(err)) throw err;
      this.aborts++;
      throw new GrammarAbort(fatalMessage(lines) ?? (err as Error).message);
    } finally {
      this.collecting = null;
    }
  }
}

/** XGrammar refused its input; `message` is its own, without the source location. */
export class GrammarAbort extends Error {
  override readonly name = 'GrammarAbort';
}

function isAbort(err: unknown): boolean {
  return err instanceof WebAssembly.RuntimeError || (err instanceof Error && /^Aborted\(/.test(err.message));
}

/** "[FATAL] /path/file.cc:902: Unsupported type "nope"" → 'Unsupported type "nope"'. */
export function fatalMessage(lines: readonly string[]): string | undefined {
  for (const line of lines) {
    const m = /\[FATAL\]\s+\S+:\d+:\s*([\s\S]*)$/.exec(line);
    if (m) return m[1]!.trim();
  }
  return undefined;
}

/** A fresh XGrammar instance, started (its WebAssembly compiled and instantiated). */
export function loadXGrammar(): Promise<XGrammarInstance> {
  const next = queue.then(start);
  queue = next.catch(() => undefined);
  return next;
}

async function start(): Promise<XGrammarInstance> {
  if (!source) {
    const file = require.resolve('@mlc-ai/web-xgrammar');
    const text = readFileSync(file, 'utf8');
    const parts = text.split(DYNAMIC_IMPORT);
    if (parts.length !== 2)
      throw new Error(`${file}: expected one ${DYNAMIC_IMPORT} (is @mlc-ai/web-xgrammar 0.1.27 installed?)`);
    source = { file, code: parts.join('await __importNodeModule()') };
  }
  const { file, code } = source;
  const module = { exports: {} as Record<string, unknown> };
  const run = new Function('exports', 'module', 'require', '__filename', '__dirname', '__importNodeModule', code);
  run(module.exports, module, require, file, path.dirname(file), () => Promise.resolve({ createRequire }));
  const xg = module.exports as unknown as XGrammarModule;
  const original = console.error;
  const instance = new XGrammarInstance(xg, (...args) => original(...args));
  console.error = instance.sink;
  try {
    (await xg.Grammar.builtinJSONGrammar()).dispose(); // starts the instance, binding its stderr to the sink
  } finally {
    console.error = original;
  }
  return instance;
}
