/**
 * Tries a grammar on a disposable XGrammar instance before the serving one compiles it. XGrammar
 * rejects a bad schema, regex or grammar by aborting its instance, which leaks that instance's stack
 * (xgrammar-loader.ts); the checker's instance has a two-token vocabulary, so it is cheap to replace,
 * and is replaced (in the background) after every abort. Parse errors do not depend on the vocabulary,
 * so what passes here compiles on the serving instance without an abort.
 */
import { EngineError, registerWireErrors } from '../errors.js';
import type { GrammarSource } from './guided-spec.js';
import { loadXGrammar, type XGrammarInstance } from './xgrammar-loader.js';

/** Aborts an instance may take before it is no longer used (it corrupts after ~30). */
const MAX_ABORTS = 8;

/** Invalid grammars came faster than the checker could be replaced; retry shortly. */
export class GrammarCheckerBusyError extends EngineError {
  override readonly code: string = 'E_GUIDED_BUSY';
  override readonly status: number = 503;
}
registerWireErrors({ GrammarCheckerBusyError });

interface Checker {
  inst: XGrammarInstance;
  compiler: { handle: CompilerHandle };
}

/** The synchronous methods of XGrammar's GrammarCompiler binding (the async wrappers only await start-up). */
export interface CompilerHandle {
  CompileJSONSchema(
    schema: string,
    anyWhitespace: boolean,
    indent: number | undefined,
    separators: { first: string; second: string } | undefined,
    strictMode: boolean,
    maxWhitespaceCnt: number | undefined,
  ): unknown;
  CompileStructuralTag(json: string): unknown;
}

/** Compiles `src` with the binding's compiler: compact JSON (no free whitespace, one line). */
export function compileWith(compiler: CompilerHandle, src: GrammarSource): unknown {
  switch (src.kind) {
    case 'json_schema':
      return compiler.CompileJSONSchema(src.schema, false, undefined, undefined, src.strict, undefined);
    case 'structural_tag':
      return compiler.CompileStructuralTag(src.json);
  }
}

export class GrammarChecker {
  private current: Checker;
  private next: Promise<Checker> | null = null;

  private constructor(first: Checker) {
    this.current = first;
  }

  static async create(): Promise<GrammarChecker> {
    return new GrammarChecker(await start());
  }

  /** Throws GrammarAbort with XGrammar's message when `src` does not compile. */
  check(src: GrammarSource): void {
    const c = this.current;
    if (c.inst.aborts >= MAX_ABORTS) {
      throw new GrammarCheckerBusyError('too many invalid grammars at once; the grammar checker is restarting, retry');
    }
    try {
      const compiled = c.inst.capture(() => compileWith(c.compiler.handle, src)) as { delete(): void };
      compiled.delete();
    } catch (err) {
      if (c.inst.aborts > 0) this.replace();
      throw err;
    }
  }

  private replace(): void {
    if (this.next) return;
    this.next = start();
    this.next.then(
      (c) => {
        this.current = c;
        this.next = null;
      },
      () => {
        this.next = null;
      },
    );
  }
}

async function start(): Promise<Checker> {
  const inst = await loadXGrammar();
  const info = await inst.xg.TokenizerInfo.createTokenizerInfo(['', 'a'], 'byte_level', false, 2, [0]);
  const compiler = await inst.xg.GrammarCompiler.createGrammarCompiler(info, false);
  return { inst, compiler: compiler as unknown as { handle: CompilerHandle } };
}
