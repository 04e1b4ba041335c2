/**
 * LLMEngine: requests in, streams of outputs back. Owns the scheduler, the block manager and the
 * model runner over one native model, and a step loop that runs while there is work: each iteration
 * schedules, awaits the native step (the event loop stays free meanwhile) and turns sampled tokens
 * into text. When idle the loop ends; the next request starts it again (no timers, no spinning).
 */
import { randomInt } from 'node:crypto';
import { BlockManager } from './block-manager.js';
import { BlockPool } from './block-pool.js';
import { ChatTemplate } from './chat-template.js';
import { EmbeddingQueue, poolingOf, type EmbeddingOutput, type PoolingType } from './embeddings.js';
import { collectStats, EngineMetrics, type EngineEventListener, type EngineStats } from './engine-metrics.js';
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
import { checkHandoff } from './kv-transfer/check-handoff.js';
import { PrefillAbortedError } from './kv-transfer/kv-errors.js';
import { handoffOf, type HandoffOptions, type KvHandoff, type PrefillOptions } from './kv-transfer/kv-handoff.js';
import { KvTransferQueue } from './kv-transfer/kv-transfer-queue.js';
import { type AdapterInfo, type AdapterLease, AdapterManager } from './lora/adapter-manager.js';
import { AdapterConfigError, AdapterNotFoundError } from './lora/errors.js';
import type { LoadedModel, LoadModelOptions } from './model-loader/load-model.js';
import type { ModelSpec } from './model-loader/model-spec.js';
import { ModelRunner } from './model-runner.js';
import type { NativeModel, NativeStepResult } from './native/native-types.js';
import { PreparedRequest } from './prepared-request.js';
import { tokenizePrompt, type PromptInput } from './prompt.js';
import { runPromptLogprobsStep, stepNeedsPromptLogprobs } from './prompt-logprobs.js';
import { RequestStream, type RequestOutput } from './request-output.js';
import { logprobOf, RequestState, SampleState } from './request-state.js';
import { resolveSamplingParams, type SamplingParams } from './sampling-params.js';
import { DEFAULT_MAX_NUM_BATCHED_TOKENS, DEFAULT_MAX_NUM_SEQS, Scheduler, type SchedulerOutput } from './scheduler.js';
import { Sequence } from './sequence.js';
import type { Tokenizer } from './tokenizer/tokenizer.js';
import type { SpecDecoder, SpecStepResult } from './spec-decode/spec-decoder.js';
import type { SpecDecodeStats } from './spec-decode/spec-metrics.js';
import type { EngineSpeculativeOptions } from './spec-decode/speculative-options.js';

export interface LLMEngineOptions extends Omit<LoadModelOptions, 'maxBatchTokens' | 'maxBatchSeqs'> {
  /** A model path (llama2.c .bin, GGUF file, Hugging Face directory), or a model already loaded (not disposed by the engine; one engine at a time may use it). */
  model: string | LoadedModel;
  /** Most tokens in one step; a loaded model must have been loaded with maxBatchTokens at least this. Default 2048. */
  maxNumBatchedTokens?: number;
  /** Most sequences running at once; a loaded model must allow maxBatchSeqs at least this. Default 256. */
  maxNumSeqs?: number;
  /** Split long prompts across steps. Default true. */
  enableChunkedPrefill?: boolean;
  /** Reuse KV blocks of earlier requests with the same prefix. Default true. */
  enablePrefixCaching?: boolean;
  /** Longest prompt + output served, at most the model's maxSeqLen. Default the model's maxSeqLen. */
  maxModelLen?: number;
  /** Jinja chat template overriding the model's. Default: the model's, else DEFAULT_CHAT_TEMPLATE. */
  chatTemplate?: string;
  /** Texts the chat template writes for bos_token / eos_token. Default ''. */
  bosToken?: string;
  eosToken?: string;
  /** Speculative decoding (n-gram lookup or a draft model); requests tune it with SamplingParams.speculative. Default none. */
  speculative?: EngineSpeculativeOptions;
  /**
   * Guided decoding (SamplingParams.guided): XGrammar starts with the engine (a few hundred ms) so that
   * prepare() can compile grammars. false: requests with `guided` are refused. Default true.
   */
  guidedDecoding?: boolean;
  /** How embed() pools hidden states. Default: the model's pooling config (sentence-transformers 1_Pooling), else 'last'. */
  pooling?: PoolingType;
}

/** stats() with the speculative-decoding counters when the engine speculates. */
export type LLMEngineStats = EngineStats & { speculative?: SpecDecodeStats };

export interface PrepareOptions {
  /** maxTokens when the parameters give none, capped by the room the prompt leaves. Default: that room. */
  defaultMaxTokens?: number;
  /** A LoRA adapter loaded with loadAdapter() to run the request with (AdapterNotFoundError otherwise). Default: the base model. */
  adapter?: string;
}

export interface EmbedOptions {
  /** Aborting it rejects the embeddings not yet computed (an AbortError). Default none. */
  signal?: AbortSignal;
}

export interface GenerateOptions {
  /** Id for abort() and in outputs. Default: a fresh 'req-N'. */
  requestId?: string;
  /** Aborting it ends the request (a final output with finishReason 'abort') and frees its blocks. Default none. */
  signal?: AbortSignal;
  /** LoRA adapter, as PrepareOptions.adapter, when generate() is given a prompt (a prepared request carries its own). */
  adapter?: string;
}

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
  private readonly requests = new Map<string, RequestState>();
  private readonly samples = new Map<number, SampleState>();
  private readonly modelStopIds: number[];
  private readonly embedder: EmbeddingQueue;
  private readonly kv: KvTransferQueue;
  /** LoRA adapters (lora/), when the model was loaded with maxLoras > 0. */
  readonly adapters: AdapterManager | null;
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
    this.adapters = model.maxLoras
      ? new AdapterManager(model, model.config, model.maxLoras, model.maxLoraRank ?? 16)
      : null;
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
    const { model, maxNumBatchedTokens, maxNumSeqs, ...rest } = options;
    const {
      enableChunkedPrefill: _c,
      enablePrefixCaching: _p,
      maxModelLen: _m,
      chatTemplate: _t,
      bosToken: _b,
      eosToken: _e,
      speculative: _s,
      pooling: _pl,
      guidedDecoding: _gd,
      ...loadOptions
    } = rest;
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
    if (adapter !== undefined && !this.adapters?.has(adapter)) throw new AdapterNotFoundError(adapter);
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
    if (prepared.params.n !== 1) throw new SamplingParamsError('n', 'prefill() hands over one sample: n must be 1');
    return new Promise<KvHandoff>((resolve, reject) => {
      this.startRequest(prepared, options, { resolve, reject, firstOutput: null, firstTokenId: -1 });
    });
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
    const kv = checkHandoff(handoff, {
      pool: this.kv.poolShape(),
      vocabSize: this.tokenizer.vocabSize,
      maxModelLen: this.maxModelLen,
    });
    const params = handoff.params;
    if (params.guided && !this.guided)
      throw new SamplingParamsError('guided', 'guided decoding is off on this engine (guidedDecoding: false)');
    this.checkCapacity(handoff.promptTokenIds.length + params.maxTokens);
    const requestId = options.requestId ?? handoff.requestId;
    if (this.requests.has(requestId))
      throw new DuplicateRequestError(`request id ${requestId} is already in flight`, { requestId });
    const arrivalTime = performance.now();
    const seq = new Sequence({
      seqId: this.nextSeqId++,
      requestId,
      index: 0,
      promptTokenIds: handoff.promptTokenIds,
      params,
      seed: handoff.seed,
      stopTokenIds: this.stopTokenIdsOf(params),
      blockSize: this.scheduler.blockManager.blockSize,
      arrivalTime,
    });
    const first = handoff.firstTokenId;
    seq.appendToken(first);
    if (params.guided && this.guided) {
      this.guided.compile(params.guided);
      seq.guided = this.guided.matcher(params.guided, seq.stopTokenIds);
      seq.guided.accept(first);
      void seq.guided.refresh();
    }
    const sample = new SampleState(seq, this.tokenizer);
    sample.acceptToken(first);
    sample.output(requestId, first, null); // the prefill engine sent it: only its text state is kept
    sample.firstTokenAt = arrivalTime;
    const stream = new RequestStream(requestId, () => this.abort(requestId));
    const req = new RequestState(requestId, [sample], stream, arrivalTime);
    this.requests.set(requestId, req);
    this.samples.set(seq.seqId, sample);
    this.kv.queueImport(seq, kv, handoff.promptTokenIds.length, options.registerPrefix ?? true, (err) =>
      this.failRequest(req, err as Error),
    );
    if (options.signal) this.attachSignal(req, options.signal);
    this.kick();
    return stream;
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
    if (this.requests.has(requestId))
      throw new DuplicateRequestError(`request id ${requestId} is already in flight`, { requestId });
    const stopTokenIds = this.stopTokenIdsOf(params);
    // An unknown adapter throws here; a known one not resident is leased once loaded (the request waits unscheduled).
    const lease = prepared.adapter !== undefined ? this.leaseAdapter(prepared.adapter) : null;
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
    this.requests.set(requestId, req);
    for (const s of samples) this.samples.set(s.seq.seqId, s);
    this.metrics.promptTokens += tokens.length;
    if (options.signal) this.attachSignal(req, options.signal);
    if (lease instanceof Promise) {
      lease.then(
        (l) =>
          this.requests.get(requestId) === req && !this.disposed ? this.start(req, l) : this.adapters!.release(l),
        (err: Error) => this.requests.get(requestId) === req && this.failRequest(req, err),
      );
    } else {
      this.start(req, lease);
    }
    return stream;
  }

  /** Hands a request's samples to the scheduler, on its adapter's slot when it has one. */
  private start(req: RequestState, lease: AdapterLease | null): void {
    if (lease) {
      req.releaseAdapter = () => this.adapters!.release(lease);
      for (const s of req.samples) {
        s.seq.loraSlot = lease.slot;
        s.seq.cacheRoot = lease.cacheRoot;
      }
    }
    for (const s of req.samples) this.scheduler.add(s.seq);
    this.kick();
  }

  private leaseAdapter(name: string): AdapterLease | Promise<AdapterLease> {
    if (!this.adapters) throw new AdapterNotFoundError(name);
    return this.adapters.acquire(name);
  }

  /**
   * Loads a PEFT LoRA adapter directory under `name` (vLLM's load_lora_adapter): checked against the
   * base (AdapterMismatchError naming the tensor), then made resident, evicting the least recently used
   * idle adapter when the slots are full. AdapterConfigError when the engine has no slots or the name is taken.
   */
  loadAdapter(name: string, path: string): Promise<AdapterInfo> {
    if (this.disposed) throw new EngineDisposedError('the engine is disposed');
    if (!this.adapters)
      throw new AdapterConfigError('this engine has no LoRA slots (load the model with maxLoras > 0)');
    return this.adapters.load(name, path);
  }

  /** Unloads an adapter: new requests for it fail with AdapterNotFoundError; running ones finish with it. */
  unloadAdapter(name: string): Promise<void> {
    if (!this.adapters) throw new AdapterNotFoundError(name);
    return this.adapters.unload(name);
  }

  /** The loaded adapters. */
  listAdapters(): AdapterInfo[] {
    return this.adapters?.list() ?? [];
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
    const req = this.requests.get(requestId);
    if (!req) return false;
    for (const sample of req.samples) {
      if (sample.seq.isFinished) continue;
      this.scheduler.finish(sample.seq, 'abort');
      this.emitOutput(req, sample, -1, null);
    }
    return true;
  }

  /** Subscribes to step and request-finished events (for metrics exporters). Returns the unsubscribe function. */
  onEvent(listener: EngineEventListener): () => void {
    return this.metrics.onEvent(listener);
  }

  stats(): LLMEngineStats {
    const stats: LLMEngineStats = collectStats(this.scheduler, this.metrics, this.requests.size);
    if (this.specDecoder) stats.speculative = this.specDecoder.metrics.stats();
    return stats;
  }

  /** Internal sizes, for leak checks in tests: requests, samples and event listeners held. */
  debugCounts(): { requests: number; samples: number; listeners: number } {
    return { requests: this.requests.size, samples: this.samples.size, listeners: this.metrics.numListeners };
  }

  /** Ends every request with EngineDisposedError, waits for the step in flight, and frees the model if the engine loaded it. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    for (const req of [...this.requests.values()])
      this.failRequest(req, new EngineDisposedError('the engine was disposed'));
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

  private attachSignal(req: RequestState, signal: AbortSignal): void {
    const onAbort = () => this.abort(req.requestId);
    if (signal.aborted) {
      queueMicrotask(onAbort);
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    req.detachSignal = () => signal.removeEventListener('abort', onAbort);
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
        for (const req of [...this.requests.values()]) this.failRequest(req, e);
      }
    }
  }

  /** One schedule → native step → update. False when nothing could be scheduled. */
  private async runStep(): Promise<boolean> {
    const out = this.scheduler.schedule();
    if (out.seqs.length === 0) {
      if (out.preempted.length > 0) return true;
      // Never expected (every admitted request fits the pool alone): fail what waits rather than spin.
      for (const req of [...this.requests.values()])
        this.failRequest(req, new EngineStepError('the scheduler cannot place any waiting request'));
      return false;
    }
    const t0 = performance.now();
    if (stepNeedsPromptLogprobs(out)) {
      const { result, prompt } = await runPromptLogprobsStep(out, this.loaded.model, this.runner);
      for (const [seqId, lps] of prompt) {
        const sample = this.samples.get(seqId);
        if (sample) sample.promptLogprobs = lps;
      }
      this.processSpecStep(out, result, t0);
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
      this.processSpecStep(out, spec, t0);
      return true;
    }
    const result = await this.runner.execute(out);
    this.processStep(out, result, t0);
    return true;
  }

  private processStep(out: SchedulerOutput, result: NativeStepResult, t0: number): void {
    const now = performance.now();
    this.noteAdmissions(out, t0);
    this.scheduler.update(out, { sampledTokenIds: result.tokens });
    let generated = 0;
    for (let i = 0; i < out.seqs.length; i++) {
      const token = result.tokens[i]!;
      const seq = out.seqs[i]!;
      if (token < 0 || seq.finishReason === 'abort') continue;
      if (seq.guided) this.acceptGuided(seq, token);
      const lp = seq.params.logprobs !== undefined ? logprobOf(result, i, token, seq.params.logprobs) : null;
      if (this.acceptSampled(seq, token, lp, now)) generated++;
    }
    this.metrics.emit({
      type: 'step',
      numSeqs: out.seqs.length,
      numTokens: out.numBatchedTokens,
      numGenerated: generated,
      numPreempted: out.preempted.length,
      durationMs: now - t0,
    });
  }

  /** One sampled token of a live sequence: detokenize, check stop strings, stream it out. False if the request is gone. */
  private acceptSampled(seq: Sequence, token: number, lp: ReturnType<typeof logprobOf> | null, now: number): boolean {
    const sample = this.samples.get(seq.seqId);
    const req = this.requests.get(seq.requestId);
    if (!sample || !req) return false;
    if (Number.isNaN(sample.firstTokenAt)) sample.firstTokenAt = now;
    const stopString = sample.acceptToken(token);
    if (stopString !== null && !seq.isFinished) {
      this.scheduler.finish(seq, 'stop');
      seq.stopReason = stopString;
    }
    this.emitOutput(req, sample, token, lp);
    return true;
  }

  /** processStep() for a speculative step: each sequence may append several tokens. */
  private processSpecStep(out: SchedulerOutput, spec: SpecStepResult, t0: number): void {
    const now = performance.now();
    this.noteAdmissions(out, t0);
    let generated = 0;
    this.scheduler.updateSpeculative(out, spec.tokenIds, spec.numDraftTokens, (i, j, token) => {
      const seq = out.seqs[i]!;
      if (seq.guided && seq.finishReason !== 'abort') this.acceptGuided(seq, token);
      if (this.acceptSampled(out.seqs[i]!, token, spec.logprobs[i]?.[j] ?? null, now)) generated++;
    });
    // Rolled-back blocks may return at the same block-table index, which the runner's row cache
    // would not notice: rewrite every row next step.
    if (spec.numDraftTokens.some((k) => k > 0)) this.runner.invalidate();
    this.metrics.emit({
      type: 'step',
      numSeqs: out.seqs.length,
      numTokens: out.numBatchedTokens,
      numGenerated: generated,
      numPreempted: out.preempted.length,
      durationMs: now - t0,
    });
  }

  /**
   * Advances a guided sequence's grammar by its sampled token (always one its mask allowed). Should the
   * grammar refuse it anyway, the sequence stops rather than continue outside the grammar.
   */
  private acceptGuided(seq: Sequence, token: number): void {
    if (!seq.guided!.accept(token) && !seq.isFinished) this.scheduler.finish(seq, 'stop');
  }

  private noteAdmissions(out: SchedulerOutput, t0: number): void {
    for (const seq of out.seqs) {
      const sample = this.samples.get(seq.seqId);
      if (sample && Number.isNaN(sample.admittedAt)) {
        sample.admittedAt = t0;
        sample.cachedPromptTokens = seq.numCachedTokens;
      }
    }
  }

  private emitOutput(
    req: RequestState,
    sample: SampleState,
    token: number,
    lp: ReturnType<typeof logprobOf> | null,
  ): void {
    const out: RequestOutput = sample.output(req.requestId, token, lp);
    if (req.handoff) {
      this.settlePrefill(req, sample, token, out);
      return;
    }
    req.stream.push(out);
    if (out.finished) this.retireSample(req, sample);
  }

  /**
   * A prefill() request's output: the first token queues the export (blocks held until it is done);
   * a finished one (a stop at the first token, or an abort) settles it now.
   */
  private settlePrefill(req: RequestState, sample: SampleState, token: number, out: RequestOutput): void {
    const waiter = req.handoff!;
    const seq = sample.seq;
    if (!out.finished) {
      waiter.firstOutput = out;
      waiter.firstTokenId = token;
      this.kv.queueExport(seq, (kv, err) => {
        this.scheduler.finish(seq, 'abort'); // handed off (or failed): blocks freed, nothing streamed
        this.samples.delete(seq.seqId);
        seq.guided?.dispose();
        seq.guided = null;
        this.retireRequest(req);
        if (kv) waiter.resolve(handoffOf(req.requestId, seq, waiter.firstOutput!, token, null, kv));
        else waiter.reject(err);
      });
      return;
    }
    if (seq.finishReason === 'abort')
      waiter.reject(new PrefillAbortedError(`request ${req.requestId} was aborted before its KV was exported`));
    else
      waiter.resolve(
        handoffOf(
          req.requestId,
          seq,
          waiter.firstOutput ?? out,
          waiter.firstTokenId >= 0 ? waiter.firstTokenId : token,
          seq.finishReason,
          null,
        ),
      );
    this.retireSample(req, sample);
  }

  private retireSample(req: RequestState, sample: SampleState): void {
    const seq = sample.seq;
    seq.guided?.dispose();
    seq.guided = null;
    this.samples.delete(seq.seqId);
    const end = performance.now();
    const ttft = sample.firstTokenAt - req.arrivalTime;
    this.metrics.emit({
      type: 'request-finished',
      requestId: req.requestId,
      index: seq.index,
      finishReason: seq.finishReason ?? 'abort',
      promptTokens: seq.promptLen,
      completionTokens: seq.numOutputTokens,
      cachedPromptTokens: sample.cachedPromptTokens,
      queueMs: sample.admittedAt - req.arrivalTime,
      ttftMs: ttft,
      e2eMs: end - req.arrivalTime,
      tpotMs: seq.numOutputTokens > 1 ? (end - sample.firstTokenAt) / (seq.numOutputTokens - 1) : NaN,
      numPreemptions: seq.numPreemptions,
    });
    req.numRetired++;
    if (req.isDone) this.retireRequest(req);
  }

  private retireRequest(req: RequestState): void {
    if (this.requests.get(req.requestId) !== req) return;
    this.requests.delete(req.requestId);
    req.detachSignal?.();
    req.detachSignal = null;
    req.releaseAdapter?.();
    req.releaseAdapter = null;
    req.stream.end();
  }

  private failRequest(req: RequestState, err: Error): void {
    for (const sample of req.samples) {
      if (!sample.seq.isFinished) this.scheduler.finish(sample.seq, 'abort');
      this.samples.delete(sample.seq.seqId);
      sample.seq.guided?.dispose();
      sample.seq.guided = null;
    }
    this.requests.delete(req.requestId);
    req.detachSignal?.();
    req.detachSignal = null;
    req.releaseAdapter?.();
    req.releaseAdapter = null;
    req.stream.fail(err);
    req.handoff?.reject(err);
  }
}

/** Computes the masks of the guided sequences that sample in this step; false when all were ready. */
async function refreshMasks(out: SchedulerOutput): Promise<boolean> {
  const pending: Promise<void>[] = [];
  for (let i = 0; i < out.seqs.length; i++) {
    const seq = out.seqs[i]!;
    if (seq.guided && !seq.guided.mask && seq.numComputedTokens + out.numNewTokens[i]! === seq.numTokens)
      pending.push(seq.guided.refresh());
  }
  if (pending.length === 0) return false;
  await Promise.all(pending);
  return true;
}

/** Removes sequences no longer running (finished meanwhile) from a scheduled step. */
function dropFinished(out: SchedulerOutput): void {
  for (let i = out.seqs.length - 1; i >= 0; i--) {
    if (out.seqs[i]!.status === 'running') continue;
    out.numBatchedTokens -= out.numNewTokens[i]!;
    out.seqs.splice(i, 1);
    out.numNewTokens.splice(i, 1);
  }
}
