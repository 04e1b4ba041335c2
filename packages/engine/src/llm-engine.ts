/**
 * LLMEngine: requests in, streams of outputs back. Owns the scheduler, the block manager and the
 * model runner over one native model, and a step loop that runs while there is work: each iteration
 * schedules, awaits the native step (the event loop stays free meanwhile) and turns sampled tokens
 * into text (step-outputs.ts). When idle the loop ends; the next request starts it again (no timers,
 * no spinning). Admission is here; the live requests are request-table.ts's, the KV handoff path
 * kv-transfer/handoff-requests.ts's, adapter leases lora/request-leases.ts's.
 */
import { randomInt } from 'node:crypto';
import { BlockManager } from './block-manager.js';
import { BlockPool } from './block-pool.js';
import { ChatTemplate } from './chat-template.js';
import { EmbeddingQueue, poolingOf, type EmbeddingOutput, type PoolingType } from './embeddings.js';
import { collectStats, EngineMetrics, type EngineEventListener } from './engine-metrics.js';
import {
  type EmbedOptions,
  type GenerateOptions,
  type LLMEngineOptions,
  type LLMEngineStats,
  loadOptionsOf,
  type PrepareOptions,
} from './engine-options.js';
import {
  ContextLengthError,
  DuplicateRequestError,
  EngineDisposedError,
  EngineStepError,
  InvalidPromptError,
  KvCapacityError,
  SamplingParamsError,
} from './errors.js';
import { GuidedDecoding } from './guided/guided-decoding.js';
import { dropFinished, refreshMasks } from './guided/step-masks.js';
import { admitHandoff, awaitPrefill, type HandoffHost, settlePrefill } from './kv-transfer/handoff-requests.js';
import type { HandoffOptions, KvHandoff, PrefillOptions, PrefillWaiter } from './kv-transfer/kv-handoff.js';
import { KvTransferQueue } from './kv-transfer/kv-transfer-queue.js';
import { type AdapterInfo, AdapterManager } from './lora/adapter-manager.js';
import { RequestLeases } from './lora/request-leases.js';
import type { LoadedModel, LoadModelOptions } from './model-loader/load-model.js';
import type { ModelSpec } from './model-loader/model-spec.js';
import { ModelRunner } from './model-runner.js';
import type { NativeModel } from './native/native-types.js';
import { PreparedRequest } from './prepared-request.js';
import { tokenizePrompt, type PromptInput } from './prompt.js';
import { runPromptLogprobsStep, stepNeedsPromptLogprobs } from './prompt-logprobs.js';
import { RequestStream } from './request-output.js';
import { RequestState, SampleState } from './request-state.js';
import { RequestTable } from './request-table.js';
import { resolveSamplingParams, type SamplingParams } from './sampling-params.js';
import { DEFAULT_MAX_NUM_BATCHED_TOKENS, DEFAULT_MAX_NUM_SEQS, Scheduler } from './scheduler.js';
import { Sequence } from './sequence.js';
import { StepOutputs } from './step-outputs.js';
import type { Tokenizer } from './tokenizer/tokenizer.js';
import type { SpecDecoder } from './spec-decode/spec-decoder.js';

export type {
  LLMEngineOptions,
  LLMEngineStats,
  PrepareOptions,
  EmbedOptions,
  GenerateOptions,
} from './engine-options.js';

export class LLMEngine implements AsyncDisposable {
  readonly spec: ModelSpec;
  readonly tokenizer: Tokenizer;
  readonly maxModelLen: number;
  readonly scheduler: Scheduler;
  readonly chatTemplate: ChatTemplate;
  private readonly loaded: LoadedModel;
  private readonly ownsModel: boolean;
  private readonly runner: ModelRunner;
  private readonly metrics = new EngineMetrics();
  private readonly table: RequestTable;
  private readonly outputs: StepOutputs;
  private readonly modelStopIds: number[];
  private readonly embedder: EmbeddingQueue;
  private readonly kv: KvTransferQueue;
  /** LoRA adapters (lora/), when the model was loaded with maxLoras > 0. */
  readonly adapters: AdapterManager | null;
  private readonly leases: RequestLeases;
  private readonly handoffHost: HandoffHost;
  private specDecoder: SpecDecoder | null = null;
  private guided: GuidedDecoding | null = null;
  private ownedDraft: LoadedModel | null = null;
  private loop: Promise<void> | null = null;
  private disposed = false;
  private nextSeqId = 0;
  private nextRequestId = 0;

  private constructor(loaded: LoadedModel, ownsModel: boolean, opts: LLMEngineOptions) {
    this.loaded = loaded;
    this.ownsModel = ownsModel;
    this.spec = loaded.spec;
    this.tokenizer = loaded.tokenizer;
    const model: NativeModel = loaded.model;
    this.maxModelLen = Math.min(opts.maxModelLen ?? model.config.maxSeqLen, model.config.maxSeqLen);
    const maxNumBatchedTokens = opts.maxNumBatchedTokens ?? DEFAULT_MAX_NUM_BATCHED_TOKENS;
    const maxNumSeqs = opts.maxNumSeqs ?? DEFAULT_MAX_NUM_SEQS;
    const blockManager = new BlockManager(
      new BlockPool(model.numBlocks, model.blockSize),
      opts.enablePrefixCaching ?? true,
    );
    this.scheduler = new Scheduler(
      {
        maxNumBatchedTokens,
        maxNumSeqs,
        maxModelLen: this.maxModelLen,
        ...(opts.enableChunkedPrefill !== undefined ? { enableChunkedPrefill: opts.enableChunkedPrefill } : {}),
      },
      blockManager,
    );
    this.runner = new ModelRunner(model, {
      blockSize: model.blockSize,
      maxNumBatchedTokens,
      maxNumSeqs,
      maxModelLen: this.maxModelLen,
    });
    this.chatTemplate = new ChatTemplate(opts.chatTemplate ?? this.spec.chatTemplate, {
      ...(opts.bosToken !== undefined ? { bosToken: opts.bosToken } : {}),
      ...(opts.eosToken !== undefined ? { eosToken: opts.eosToken } : {}),
    });
    this.kv = new KvTransferQueue(model, this.scheduler);
    this.table = new RequestTable(this.scheduler, this.metrics, (req, sample, token, out) =>
      settlePrefill(this.handoffHost, req, sample, token, out),
    );
    this.outputs = new StepOutputs(this.table, this.scheduler, this.metrics, this.runner);
    this.handoffHost = {
      table: this.table,
      kv: this.kv,
      scheduler: this.scheduler,
      tokenizer: this.tokenizer,
      maxModelLen: this.maxModelLen,
      guided: () => this.guided,
      newSeqId: () => this.nextSeqId++,
      stopTokenIdsOf: (params) => this.stopTokenIdsOf(params),
      checkCapacity: (maxTokens) => this.checkCapacity(maxTokens),
      abort: (requestId) => this.abort(requestId),
      kick: () => this.kick(),
    };
    this.adapters = model.maxLoras
      ? new AdapterManager(model, model.config, model.maxLoras, model.maxLoraRank ?? 16)
      : null;
    this.leases = new RequestLeases(this.adapters);
    this.modelStopIds = [...new Set([this.spec.eosId, ...this.spec.stopTokenIds].filter((id) => id >= 0))];
    this.embedder = new EmbeddingQueue(model, blockManager.pool, {
      blockSize: model.blockSize,
      maxNumBatchedTokens,
      maxNumSeqs,
      maxModelLen: this.maxModelLen,
      dim: model.config.dim,
      pooling: opts.pooling ?? poolingOf(this.spec),
    });
  }

  /** Loads the model (unless given one) and builds the engine. */
  static async create(options: LLMEngineOptions): Promise<LLMEngine> {
    const { model, maxNumBatchedTokens, maxNumSeqs } = options;
    const loadOptions = loadOptionsOf(options);
    if (typeof model !== 'string')
      return LLMEngine.withGuided(
        await LLMEngine.withSpeculation(new LLMEngine(model, false, options), options, loadOptions),
        options,
      );
    const { loadModel } = await import('./model-loader/load-model.js');
    const loaded = await loadModel(model, {
      ...loadOptions,
      maxBatchTokens: maxNumBatchedTokens ?? DEFAULT_MAX_NUM_BATCHED_TOKENS,
      maxBatchSeqs: maxNumSeqs ?? DEFAULT_MAX_NUM_SEQS,
    });
    try {
      return await LLMEngine.withGuided(
        await LLMEngine.withSpeculation(new LLMEngine(loaded, true, options), options, loadOptions),
        options,
      );
    } catch (err) {
      loaded.dispose();
      throw err;
    }
  }

  private static async withGuided(engine: LLMEngine, options: LLMEngineOptions): Promise<LLMEngine> {
    if (options.guidedDecoding === false) return engine;
    try {
      engine.guided = await GuidedDecoding.create(
        engine.tokenizer,
        engine.loaded.model.config.vocabSize,
        engine.modelStopIds,
      );
    } catch (err) {
      await engine.dispose();
      throw err;
    }
    return engine;
  }

  private static async withSpeculation(
    engine: LLMEngine,
    options: LLMEngineOptions,
    loadOptions: LoadModelOptions,
  ): Promise<LLMEngine> {
    if (!options.speculative) return engine;
    const { createSpecDecoder } = await import('./spec-decode/speculative-options.js');
    const setup = await createSpecDecoder(
      options.speculative,
      engine.loaded,
      {
        maxNumBatchedTokens: engine.scheduler.maxNumBatchedTokens,
        maxNumSeqs: engine.scheduler.maxNumSeqs,
        maxModelLen: engine.maxModelLen,
      },
      loadOptions,
    );
    engine.specDecoder = setup.decoder;
    engine.ownedDraft = setup.ownedDraft;
    return engine;
  }

  /**
   * Checks a request without starting it — the one place a request's input is validated: tokenizes the
   * prompt (checked against the vocabulary), resolves the sampling parameters against the model's context
   * and vocabulary, and checks that the request could ever fit the KV pool. Throws, each error naming
   * the parameter at fault as the SamplingParams field (or 'prompt'): InvalidPromptError,
   * ChatTemplateError, SamplingParamsError, ContextLengthError, KvCapacityError, EngineDisposedError.
   * generate() takes the result and starts it without checking again.
   */
  prepare(prompt: PromptInput, samplingParams: SamplingParams = {}, options: PrepareOptions = {}): PreparedRequest {
    if (this.disposed) throw new EngineDisposedError('the engine is disposed');
    const { tokenIds, text } = tokenizePrompt(prompt, this.tokenizer, this.chatTemplate);
    const params = resolveSamplingParams(samplingParams, {
      maxModelLen: this.maxModelLen,
      vocabSize: this.tokenizer.vocabSize,
      promptLen: tokenIds.length,
      ...(options.defaultMaxTokens !== undefined ? { defaultMaxTokens: options.defaultMaxTokens } : {}),
    });
    if (params.promptLogprobs !== undefined && tokenIds.length > this.scheduler.maxNumBatchedTokens) {
      throw new SamplingParamsError(
        'promptLogprobs',
        `needs the prompt in one step: at most ${this.scheduler.maxNumBatchedTokens} tokens (maxNumBatchedTokens), got ${tokenIds.length}`,
      );
    }
    if (params.guided) {
      if (!this.guided)
        throw new SamplingParamsError('guided', 'guided decoding is off on this engine (guidedDecoding: false)');
      this.guided.compile(params.guided); // cached for generate()
    }
    this.checkCapacity(tokenIds.length + params.maxTokens);
    const adapter = options.adapter;
    if (adapter !== undefined) this.leases.check(adapter);
    return new PreparedRequest(this, tokenIds, params, text, (ids) => this.tokenizer.decode(ids), adapter);
  }

  /**
   * Starts a request and returns its outputs as an async iterable (one output per new token per
   * sample, merged while the consumer lags). Takes a prompt and sampling parameters, checked here as
   * prepare() checks them, or a request prepare() returned. Invalid input throws here, synchronously:
   * prepare()'s errors, DuplicateRequestError, EngineDisposedError.
   * Breaking out of the iteration aborts the request.
   */
  generate(request: PreparedRequest, options?: GenerateOptions): RequestStream;
  generate(prompt: PromptInput, samplingParams?: SamplingParams, options?: GenerateOptions): RequestStream;
  generate(
    input: PromptInput | PreparedRequest,
    paramsOrOptions?: SamplingParams | GenerateOptions,
    maybeOptions?: GenerateOptions,
  ): RequestStream {
    if (this.disposed) throw new EngineDisposedError('the engine is disposed');
    let prepared: PreparedRequest;
    let options: GenerateOptions;
    if (input instanceof PreparedRequest) {
      if (!input.preparedBy(this)) throw new InvalidPromptError('prompt: was prepared by another engine');
      prepared = input;
      options = (paramsOrOptions as GenerateOptions | undefined) ?? {};
    } else {
      options = maybeOptions ?? {};
      const adapter = options.adapter;
      prepared = this.prepare(input, paramsOrOptions as SamplingParams | undefined, adapter ? { adapter } : {});
    }
    return this.startRequest(prepared, options, null);
  }

  /**
   * Prefill only, for prefill/decode disaggregation: runs the prompt, samples the first token, exports
   * the prompt's K/V (kv-transfer/kv-payload.ts) and frees its blocks. The handoff carries what another
   * engine on the same model needs to continue exactly as this one would (generateFromHandoff). One
   * sample only (n = 1). Throws what generate() throws; rejects with PrefillAbortedError when aborted
   * (signal, abort(requestId)) and with EngineDisposedError on dispose — the blocks freed either way.
   */
  prefill(
    input: PromptInput | PreparedRequest,
    samplingParams?: SamplingParams,
    options: PrefillOptions = {},
  ): Promise<KvHandoff> {
    if (this.disposed) throw new EngineDisposedError('the engine is disposed');
    if (!this.loaded.model.exportKv) throw new EngineStepError('this native model cannot export KV');
    const prepared = input instanceof PreparedRequest ? input : this.prepare(input, samplingParams);
    if (!prepared.preparedBy(this)) throw new InvalidPromptError('prompt: was prepared by another engine');
    return awaitPrefill(prepared, (waiter: PrefillWaiter) => this.startRequest(prepared, options, waiter));
  }

  /**
   * Continues a request another engine prefilled (prefill()): checks the handoff synchronously
   * (checkHandoff: KvModelMismatchError, KvDtypeMismatchError, KvBlockSizeMismatchError, KvPayloadError,
   * InvalidPromptError, ContextLengthError; and KvCapacityError, DuplicateRequestError as generate()),
   * then waits for a seat and blocks, copies the K/V in between two steps and decodes from the token
   * after the first. The stream's outputs are those generate() would stream after its first (the
   * prefill engine's handoff.firstOutput): greedy and seeded output equal one engine's. Aborting frees
   * the blocks wherever it is.
   */
  generateFromHandoff(handoff: KvHandoff, options: HandoffOptions = {}): RequestStream {
    if (this.disposed) throw new EngineDisposedError('the engine is disposed');
    return admitHandoff(this.handoffHost, handoff, options);
  }

  private stopTokenIdsOf(params: PreparedRequest['params']): number[] {
    return params.ignoreEos ? params.stopTokenIds : [...new Set([...params.stopTokenIds, ...this.modelStopIds])];
  }

  private startRequest(
    prepared: PreparedRequest,
    options: GenerateOptions,
    handoff: RequestState['handoff'],
  ): RequestStream {
    const { tokenIds: tokens, params } = prepared;
    const requestId = options.requestId ?? `req-${this.nextRequestId++}`;
    if (this.table.has(requestId))
      throw new DuplicateRequestError(`request id ${requestId} is already in flight`, { requestId });
    const stopTokenIds = this.stopTokenIdsOf(params);
    // An unknown adapter throws here; a known one not resident is leased once loaded (the request waits unscheduled).
    const lease = this.leases.take(prepared.adapter);
    const arrivalTime = performance.now();
    const samples: SampleState[] = [];
    for (let i = 0; i < params.n; i++) {
      const seed = params.seed !== undefined ? (params.seed + i) >>> 0 : randomInt(0, 2 ** 32 - 1);
      const seq = new Sequence({
        seqId: this.nextSeqId++,
        requestId,
        index: i,
        promptTokenIds: tokens,
        params,
        seed,
        stopTokenIds,
        blockSize: this.scheduler.blockManager.blockSize,
        parent: samples[0]?.seq ?? null,
        arrivalTime,
      });
      if (params.guided && this.guided) {
        seq.guided = this.guided.matcher(params.guided, stopTokenIds);
        void seq.guided.refresh(); // the first mask, computed while a step in flight runs
      }
      samples.push(new SampleState(seq, this.tokenizer));
    }
    const stream = new RequestStream(requestId, () => this.abort(requestId));
    const req = new RequestState(requestId, samples, stream, arrivalTime);
    req.handoff = handoff;
    this.table.add(req);
    this.metrics.promptTokens += tokens.length;
    if (options.signal) this.table.attachSignal(req, options.signal, () => this.abort(requestId));
    this.leases.startWith(
      req,
      lease,
      () => this.table.isLive(req) && !this.disposed,
      () => {
        for (const s of samples) this.scheduler.add(s.seq);
        this.kick();
      },
      (err) => this.table.fail(req, err),
    );
    return stream;
  }

  /**
   * Loads a PEFT LoRA adapter directory under `name` (vLLM's load_lora_adapter): checked against the
   * base (AdapterMismatchError naming the tensor), then made resident, evicting the least recently used
   * idle adapter when the slots are full. AdapterConfigError when the engine has no slots or the name is taken.
   */
  loadAdapter(name: string, path: string): Promise<AdapterInfo> {
    if (this.disposed) throw new EngineDisposedError('the engine is disposed');
    return this.leases.load(name, path);
  }

  /** Unloads an adapter: new requests for it fail with AdapterNotFoundError; running ones finish with it. */
  unloadAdapter(name: string): Promise<void> {
    return this.leases.unload(name);
  }

  /** The loaded adapters. */
  listAdapters(): AdapterInfo[] {
    return this.leases.list();
  }

  /**
   * Checks and tokenizes an embedding input (text or token ids; chat messages through the template) — the
   * validation half of embed(): InvalidPromptError, ChatTemplateError, ContextLengthError ('prompt': more
   * than embedMaxTokens, since an embedding reads its whole prompt in one step), EngineDisposedError.
   */
  prepareEmbedding(input: PromptInput): number[] {
    if (this.disposed) throw new EngineDisposedError('the engine is disposed');
    const { tokenIds } = tokenizePrompt(input, this.tokenizer, this.chatTemplate);
    const max = this.embedder.maxPromptTokens;
    if (tokenIds.length > max) {
      throw new ContextLengthError(
        'prompt',
        `is ${tokenIds.length} tokens; an embedding input may have at most ${max} (maxModelLen, maxNumBatchedTokens)`,
        { promptLen: tokenIds.length, maxModelLen: max },
      );
    }
    return tokenIds;
  }

  /** The longest embedding input in tokens; the pooling and length of the vectors. */
  get embedding(): { maxTokens: number; pooling: PoolingType; dim: number } {
    return { maxTokens: this.embedder.maxPromptTokens, pooling: this.embedder.pooling, dim: this.embedder.dim };
  }

  /**
   * Embeddings of `inputs` (each checked as prepareEmbedding checks it, all before any runs; token-id
   * arrays as returned by prepareEmbedding are taken as they are after the same checks): unit vectors of
   * the model's final hidden states, pooled as `pooling` says, computed between generation steps in
   * batched native calls without sampling. A vector does not depend on what else shares its step.
   */
  embed(inputs: readonly PromptInput[], options: EmbedOptions = {}): Promise<EmbeddingOutput[]> {
    const prompts = inputs.map((input) => this.prepareEmbedding(input));
    const all = Promise.all(prompts.map((ids) => this.embedder.add(ids, options.signal)));
    this.kick();
    return all;
  }

  /** Ends a request wherever it is: its samples finish with 'abort' and their blocks are freed now. False if unknown or done. */
  abort(requestId: string): boolean {
    const req = this.table.get(requestId);
    if (!req) return false;
    for (const sample of req.samples) {
      if (sample.seq.isFinished) continue;
      this.scheduler.finish(sample.seq, 'abort');
      this.table.emit(req, sample, -1, null);
    }
    return true;
  }

  /** Subscribes to step and request-finished events (for metrics exporters). Returns the unsubscribe function. */
  onEvent(listener: EngineEventListener): () => void {
    return this.metrics.onEvent(listener);
  }

  stats(): LLMEngineStats {
    const stats: LLMEngineStats = collectStats(this.scheduler, this.metrics, this.table.size);
    if (this.specDecoder) stats.speculative = this.specDecoder.metrics.stats();
    return stats;
  }

  /** Internal sizes, for leak checks in tests: requests, samples and event listeners held. */
  debugCounts(): { requests: number; samples: number; listeners: number } {
    return { requests: this.table.size, samples: this.table.samples.size, listeners: this.metrics.numListeners };
  }

  /** Ends every request with EngineDisposedError, waits for the step in flight, and frees the model if the engine loaded it. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.table.failAll(() => new EngineDisposedError('the engine was disposed'));
    this.embedder.failAll();
    await this.loop;
    if (this.ownsModel) this.loaded.dispose();
    this.ownedDraft?.dispose();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }

  private checkCapacity(maxTokens: number): void {
    const bm = this.scheduler.blockManager;
    const need = bm.blocksFor(maxTokens);
    if (need > bm.pool.numBlocks) {
      throw new KvCapacityError(
        `a request of up to ${maxTokens} tokens needs ${need} KV blocks; the pool has ${bm.pool.numBlocks}`,
        { needBlocks: need, numBlocks: bm.pool.numBlocks },
      );
    }
    if (!this.scheduler.enableChunkedPrefill && maxTokens > this.scheduler.maxNumBatchedTokens) {
      throw new KvCapacityError(
        `without chunked prefill a request of up to ${maxTokens} tokens exceeds maxNumBatchedTokens (${this.scheduler.maxNumBatchedTokens})`,
      );
    }
  }

  private kick(): void {
    if (this.loop || this.disposed || !(this.scheduler.hasWork || this.embedder.hasWork || this.kv.hasImports)) return;
    this.loop = this.runLoop().finally(() => {
      this.loop = null;
      this.kick();
    });
  }

  private async runLoop(): Promise<void> {
    while ((this.scheduler.hasWork || this.embedder.hasWork || this.kv.hasImports) && !this.disposed) {
      try {
        if (this.kv.hasImports) await this.kv.runImports();
        // Embeddings between generation steps; one that waits for blocks held by generations waits a step.
        const embedded = this.embedder.hasWork && (await this.embedder.step());
        if (!this.scheduler.hasWork) {
          if (embedded) continue;
          this.kv.failImports(new EngineStepError('the KV pool cannot hold the waiting imported requests'));
          this.embedder.failAll(new EngineStepError('the KV pool cannot hold the waiting embedding inputs'));
          return;
        }
        if (this.disposed) return;
        if (!(await this.runStep())) return;
        if (this.kv.hasExports) await this.kv.runExports();
      } catch (err) {
        // A failed native step (or a bug after it): every request in flight ends with the error; the engine goes on.
        this.runner.invalidate();
        const e = new EngineStepError(`engine step failed: ${(err as Error).message}`, {
          cause: (err as { code?: string }).code,
        });
        this.table.failAll(() => e);
      }
    }
  }

  /** One schedule → native step → update. False when nothing could be scheduled. */
  private async runStep(): Promise<boolean> {
    const out = this.scheduler.schedule();
    if (out.seqs.length === 0) {
      if (out.preempted.length > 0) return true;
      // Never expected (every admitted request fits the pool alone): fail what waits rather than spin.
      this.table.failAll(() => new EngineStepError('the scheduler cannot place any waiting request'));
      return false;
    }
    const t0 = performance.now();
    if (stepNeedsPromptLogprobs(out)) {
      const { result, prompt } = await runPromptLogprobsStep(out, this.loaded.model, this.runner);
      for (const [seqId, lps] of prompt) {
        const sample = this.table.samples.get(seqId);
        if (sample) sample.promptLogprobs = lps;
      }
      this.outputs.applySpeculative(out, result, t0);
      return true;
    }
    if (this.guided && (await refreshMasks(out))) {
      // a request may have been aborted while its masks were computed: it leaves the step
      dropFinished(out);
      if (out.seqs.length === 0) return true;
    }
    const spec = this.specDecoder
      ? await this.specDecoder.step(out, this.loaded.model, this.runner, this.scheduler.blockManager)
      : null;
    if (spec) {
      this.outputs.applySpeculative(out, spec, t0);
      return true;
    }
    const result = await this.runner.execute(out);
    this.outputs.apply(out, result, t0);
    return true;
  }
}
