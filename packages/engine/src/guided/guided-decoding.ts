/**
 * Guided decoding for one engine (one tokenizer): compiles GuidedSpecs with XGrammar into grammars
 * (cached by source, so a schema every request sends compiles once), and makes each sequence's
 * GuidedMatcher. compile() is synchronous, so LLMEngine.prepare() refuses a bad spec at once with a
 * SamplingParamsError naming the parameter and XGrammar's own problem ('Unsupported type "nope"',
 * 'Regex parsing error at position 4: ...'), and one whose first token has no allowed continuation.
 *
 * XGrammar's JavaScript wrappers are async only because they wait for the WebAssembly module to
 * start; once it has (create() waits), the bindings they wrap are synchronous and are called directly
 * for compiling and matching. Masks use the async wrapper (one copy out of WebAssembly memory).
 */
import { SamplingParamsError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { GrammarChecker, compileWith, type CompilerHandle } from './grammar-checker.js';
import { GuidedMatcher, type MatcherLike } from './guided-matcher.js';
import { grammarSource, type GrammarSource, type GuidedSpec } from './guided-spec.js';
import { maskOf } from './token-mask.js';
import { GrammarAbort, loadXGrammar, type XGrammarInstance } from './xgrammar-loader.js';
import { byteLevelVocab } from './xgrammar-vocab.js';

/** Compiled grammars kept (the least recently used is freed; matchers keep their own reference). */
const CACHE_SIZE = 64;

interface CompiledHandle {
  delete(): void;
}
type MatcherCtor = new (
  compiled: CompiledHandle,
  stopTokens: unknown,
  terminateWithoutStop: boolean,
  maxRollback: number,
) => MatcherLike['handle'];

export class GuidedDecoding {
  private readonly cache = new Map<string, CompiledHandle>();

  private constructor(
    private readonly inst: XGrammarInstance,
    private readonly compiler: CompilerHandle,
    private readonly matcherCtor: MatcherCtor,
    private readonly checker: GrammarChecker,
    private readonly vocabSize: number,
    private readonly stopTokenIds: readonly number[],
  ) {}

  /**
   * Starts XGrammar for `tokenizer` (vocabSize: the model's logit rows, at least the tokenizer's) with
   * the model's stop tokens ending a complete sentence.
   */
  static async create(
    tokenizer: Tokenizer,
    vocabSize: number,
    stopTokenIds: readonly number[],
  ): Promise<GuidedDecoding> {
    const [inst, checker] = await Promise.all([loadXGrammar(), GrammarChecker.create()]);
    const { xg } = inst;
    const info = await xg.TokenizerInfo.createTokenizerInfo(
      byteLevelVocab(tokenizer, vocabSize),
      'byte_level',
      false,
      vocabSize,
      [...stopTokenIds],
    );
    const compiler = await xg.GrammarCompiler.createGrammarCompiler(info, true);
    // The matcher binding's constructor, from one matcher made the documented way.
    const probe = await xg.GrammarMatcher.createGrammarMatcher(await compiler.compileBuiltinJSONGrammar());
    const handle = (probe as unknown as MatcherLike).handle;
    const ctor = (handle as unknown as { constructor: MatcherCtor }).constructor;
    probe.dispose();
    return new GuidedDecoding(
      inst,
      (compiler as unknown as { handle: CompilerHandle }).handle,
      ctor,
      checker,
      vocabSize,
      stopTokenIds,
    );
  }

  /**
   * Compiles `spec` (cached). Throws SamplingParamsError naming `param` when XGrammar rejects it or
   * when no token can start the output; GrammarCheckerBusyError under a burst of invalid grammars.
   */
  compile(spec: GuidedSpec, param = 'guided'): CompiledHandle {
    const src = grammarSource(spec);
    const hit = this.cache.get(src.key);
    if (hit) {
      this.cache.delete(src.key);
      this.cache.set(src.key, hit);
      return hit;
    }
    const compiled = this.compileNew(src, spec, param);
    this.cache.set(src.key, compiled);
    if (this.cache.size > CACHE_SIZE) {
      const [oldest, old] = this.cache.entries().next().value as [string, CompiledHandle];
      this.cache.delete(oldest);
      old.delete();
    }
    return compiled;
  }

  /** A matcher for one sequence of a request with `spec`, ending on `stopTokenIds` (the sequence's own). */
  matcher(spec: GuidedSpec, stopTokenIds: readonly number[]): GuidedMatcher {
    const compiled = this.compile(spec);
    const stops = stopTokenIds.length > 0 ? stopTokenIds : this.stopTokenIds;
    const handle = new this.matcherCtor(compiled, undefined, false, -1);
    // XGrammar's wrapper class around the binding (its constructor is private in the typings only)
    const Wrapper = this.inst.xg.GrammarMatcher as unknown as new (h: unknown, vocab: number) => MatcherLike;
    const wrapped = new Wrapper(handle, this.vocabSize);
    return new GuidedMatcher(wrapped, maskOf(stops.length > 0 ? stops : [0], this.vocabSize));
  }

  private compileNew(src: GrammarSource, spec: GuidedSpec, param: string): CompiledHandle {
    const field = param;
    let compiled: CompiledHandle;
    try {
      this.checker.check(src);
      compiled = this.inst.capture(() => compileWith(this.compiler, src)) as CompiledHandle;
    } catch (err) {
      if (err instanceof GrammarAbort) throw new SamplingParamsError(field, err.message);
      throw err;
    }
    // A grammar whose first token cannot be spelled with this vocabulary (or that matches nothing).
    const probe = new this.matcherCtor(compiled, undefined, false, -1) as unknown as {
      GetNextTokenBitmask(vocab: number): { size(): number; get(i: number): number; delete(): void };
      delete(): void;
    };
    try {
      const bits = probe.GetNextTokenBitmask(this.vocabSize);
      let any = false;
      for (let i = 0, n = bits.size(); i < n && !any; i++) any = bits.get(i) !== 0;
      bits.delete();
      if (!any) {
        compiled.delete();
        throw new SamplingParamsError(
          field,
          'has no valid continuation: no token of the vocabulary can start the output',
        );
      }
    } finally {
      probe.delete();
    }
    return compiled;
  }
}
