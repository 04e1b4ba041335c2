/**
 * TargetModel: the verifying half of speculative decoding as a deployment. It tokenizes prompts,
 * scores a request's token ids plus the draft's k proposals in one forward, keeps what exact
 * rejection sampling accepts (greedy: what matches its argmax) plus one token of its own, and keeps
 * the request's KV between rounds (a replica without it recomputes: slower, never different).
 */
import {
  ChatTemplate,
  resolveSamplingParams,
  SessionVerifier,
  tokenizePrompt,
  type ChatMessage,
  type LoadedModel,
  type ResolvedSamplingParams,
  type SamplingParams,
} from '@flotilla/engine';
import type { GraphToken } from './graph.js';
import { tokenInfo } from './graph-deltas.js';
import { loadSpecModel, type SpecCall, type SpecModelOptions } from './spec-session.js';

export interface TargetInfo {
  maxModelLen: number;
  vocabSize: number;
  /** Token ids that end generation (EOS and the model's stop tokens). */
  stopTokenIds: number[];
}

export interface VerifyWire {
  tokens: number[];
  numAccepted: number;
  /** The text of tokenIds[promptLen..] followed by `tokens`. */
  text: string;
}

export class TargetModel {
  readonly #loading: Promise<{ loaded: LoadedModel; verifier: SessionVerifier; chat: ChatTemplate }>;

  constructor(protected readonly options: SpecModelOptions) {
    this.#loading = loadSpecModel(options).then((loaded) => ({
      loaded,
      chat: new ChatTemplate(loaded.spec.chatTemplate),
      verifier: new SessionVerifier(
        loaded.model,
        options.maxNumBatchedTokens !== undefined ? { maxNumBatchedTokens: options.maxNumBatchedTokens } : {},
      ),
    }));
    this.#loading.catch(() => {});
  }

  async info(): Promise<TargetInfo> {
    const { loaded } = await this.#loading;
    const ids = [loaded.spec.eosId, ...loaded.spec.stopTokenIds].filter((id) => id >= 0);
    return {
      maxModelLen: loaded.model.config.maxSeqLen,
      vocabSize: loaded.model.config.vocabSize,
      stopTokenIds: [...new Set(ids)],
    };
  }

  /** Prompt text → token ids, as LLMEngine.generate() encodes a string prompt. */
  async tokenize(text: string): Promise<number[]> {
    return (await this.#loading).loaded.tokenizer.encode(text);
  }

  /**
   * A prompt → token ids and its text, as LLMEngine.prepare() does: a string is encoded, messages go
   * through the model's chat template (with the generation prompt), token ids are checked against the
   * vocabulary (text null). Throws the engine's InvalidPromptError / ChatTemplateError.
   */
  async encodePrompt(
    input: string | { messages: ChatMessage[] } | { tokenIds: number[] },
  ): Promise<{ tokenIds: number[]; text: string | null }> {
    const { loaded, chat } = await this.#loading;
    const prompt = typeof input === 'object' && 'messages' in input ? { ...input, addGenerationPrompt: true } : input;
    const r = tokenizePrompt(prompt, loaded.tokenizer, chat);
    return { tokenIds: r.tokenIds, text: r.text };
  }

  /** Checks sampling parameters against the model and a prompt length (throws SamplingParamsError). */
  async resolveParams(params: SamplingParams, promptLen: number): Promise<ResolvedSamplingParams> {
    const { loaded } = await this.#loading;
    return resolveSamplingParams(params, {
      maxModelLen: loaded.model.config.maxSeqLen,
      vocabSize: loaded.model.config.vocabSize,
      promptLen,
    });
  }

  /** One verification round; `promptLen` says where the output starts, for the returned text. */
  async verify(call: SpecCall, proposals: number[], q: number[][] | null, promptLen: number): Promise<VerifyWire> {
    const { loaded, verifier } = await this.#loading;
    const r = await verifier.verify(call, proposals, q ? q.map((row) => Float64Array.from(row)) : null);
    const text = outputText(loaded, [...call.tokenIds, ...r.tokens], promptLen);
    return { tokens: r.tokens, numAccepted: r.numAccepted, text };
  }

  /** The text of tokenIds[promptLen..], as LLMEngine streams it. */
  async outputText(tokenIds: number[], promptLen: number): Promise<string> {
    return outputText((await this.#loading).loaded, tokenIds, promptLen);
  }

  /** Text bytes and special flags of token ids (GraphToken, for LLMFront's logprobs and TGI token texts). */
  async tokenInfo(ids: number[]): Promise<GraphToken[]> {
    return tokenInfo((await this.#loading).loaded.tokenizer, ids, new Set());
  }

  async release(requestId: string): Promise<void> {
    (await this.#loading).verifier.release(requestId);
  }

  async stats(): Promise<{ sessions: number }> {
    return { sessions: (await this.#loading).verifier.numSessions };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    (await this.#loading.catch(() => null))?.loaded.dispose();
  }
}

/** Decoded after the last prompt token, as the engine's incremental detokenizer does (a leading space survives). */
function outputText(loaded: LoadedModel, tokenIds: readonly number[], promptLen: number): string {
  const ctx = tokenIds.slice(Math.max(0, promptLen - 1), promptLen);
  const head = loaded.tokenizer.decode(ctx);
  return loaded.tokenizer.decode([...ctx, ...tokenIds.slice(promptLen)]).slice(head.length);
}
