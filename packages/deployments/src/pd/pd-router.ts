/**
 * PdRouter: prefill/decode disaggregation as a graph. Each request's prompt runs on a PrefillServer,
 * whose first token streams out at once; its KV payload goes to the DecodeServer replica with the most
 * free KV (DecodeChoice over the replicas' reports, sent there with a pinned routing key), which imports
 * it and streams the rest. When the transfer fails (the decode replica died and the core router's retry
 * failed too, the payload was refused, the prefill side is down) the request runs whole on a decode
 * replica instead (local prefill), with the same seed, leaving out what was already sent: the client
 * sees one stream either way. Requests PD does not carry (n > 1, prompt logprobs, guided decoding) run
 * locally from the start.
 *
 * ```ts
 * export const app = Front.bind(Pd.bind(Prefill.bind(opts), Decode.bind(opts)));
 * ```
 */
import { randomInt } from 'node:crypto';
import {
  ActorDiedError,
  BackPressureError,
  UnavailableError,
  getRequestContext,
  pinnedReplicaKey,
  type DeploymentHandle,
} from '@flotilla/core';
import type { SamplingParams } from '@flotilla/engine';
import type { GenerationGraph, GraphDelta, GraphInfo, GraphPrepared, GraphRequest } from '../graph.js';
import { GRAPH_INTERNAL_METHODS, generationOnly } from '../graph.js';
import { ModelUnavailableError } from '../errors.js';
import { DecodeChoice, type DecodeChoiceOptions } from './decode-choice.js';
import type { DecodeServer } from './decode-server.js';
import type { PrefillServer } from './prefill-server.js';
import type { DecodeItem, PdDelta, PdRequest, PrefillHandoff, PrefillItem } from './pd-wire.js';
import { PdStats } from './pd-stats.js';

export interface PdRouterOptions extends DecodeChoiceOptions {
  /** The graph's model name. Default 'pd'. */
  servedModelName?: string;
  /**
   * false: every request runs whole on a decode replica (no prefill call, no transfer), e.g. to compare
   * against PD with the same graph. Default true.
   */
  disaggregate?: boolean;
}

/** A request before the router fixes its seed (PdRequest otherwise). */
export type PdRouteRequest = Omit<PdRequest, 'params'> & {
  params: SamplingParams & { maxTokens: number };
  /** What the request can't do over PD (n > 1, prompt logprobs, guided decoding): run it locally. */
  localOnly?: boolean;
};

export class PdRouter implements GenerationGraph {
  /** The graph methods the front calls (graph.ts): through handles only, never from a proxy's client. */
  static internalMethods: readonly string[] = GRAPH_INTERNAL_METHODS;
  protected readonly choice: DecodeChoice;
  protected readonly pdStats = new PdStats();
  protected readonly modelName: string;
  readonly #disaggregate: boolean;

  constructor(
    protected readonly prefillHandle: DeploymentHandle<PrefillServer>,
    protected readonly decodeHandle: DeploymentHandle<DecodeServer>,
    options: PdRouterOptions = {},
  ) {
    this.choice = new DecodeChoice(options);
    this.modelName = options.servedModelName ?? 'pd';
    this.#disaggregate = options.disaggregate ?? true;
  }

  /** GenerationGraph: the decode side's model under this graph's name. */
  async graphInfo(): Promise<GraphInfo> {
    const info = (await this.decodeHandle.remote('graphInfo', [])) as GraphInfo;
    return { ...generationOnly(info), name: this.modelName, description: 'prefill/decode disaggregation (PdRouter)' };
  }

  /** GenerationGraph: tokenized and checked by a PrefillServer (by a DecodeServer when none answers). */
  async tokenizePrompt(req: GraphRequest): Promise<GraphPrepared> {
    try {
      return (await this.prefillHandle.remote('tokenizePrompt', [req])) as GraphPrepared;
    } catch (err) {
      if (!transferFailure(err)) throw err;
      return (await this.decodeHandle.remote('tokenizePrompt', [req])) as GraphPrepared;
    }
  }

  /** GenerationGraph: generate() over the front's request; what PD does not carry runs locally. */
  async *generateStream(req: GraphRequest): AsyncGenerator<GraphDelta> {
    const prepared = req.prepared ?? (await this.tokenizePrompt(req));
    const p = req.params;
    const tokenIds = prepared.tokenIds;
    if (!tokenIds) throw new Error('PdRouter: the prefill side returned no token ids');
    yield* this.generate({
      requestId: req.requestId,
      tokenIds,
      params: { ...p, maxTokens: prepared.maxTokens },
      ...(req.tokenInfo ? { tokenInfo: true } : {}),
      localOnly: prepared.n > 1 || p.promptLogprobs !== undefined || p.guided !== undefined,
    });
  }

  /** Streams the outputs of `route`: prefill here, decode there, or the whole request locally. */
  async *generate(route: PdRouteRequest): AsyncGenerator<PdDelta> {
    const { localOnly, ...rest } = route;
    const req: PdRequest = { ...rest, params: { ...rest.params, seed: rest.params.seed ?? randomInt(0, 2 ** 32 - 1) } };
    if (localOnly || !this.#disaggregate) {
      this.pdStats.local++;
      yield* this.local(req, { tokens: 0, chars: 0 });
      return;
    }
    const blockSize = this.choice.blockSize ?? 16;
    const blocks = Math.ceil((req.tokenIds.length + req.params.maxTokens) / blockSize);
    const target = this.choice.choose(blocks, Date.now());
    // The blocks choose() counted for `target` leave its pending count once: in the report that includes
    // them, or here when the request never reaches that pool (failed, finished at once, went elsewhere).
    let counted = target === undefined;
    const uncount = () => {
      if (!counted) this.choice.release(target!, blocks);
      counted = true;
    };
    try {
      // The first token is sent on as soon as it arrives; the payload follows on the same stream.
      let first: PdDelta | undefined;
      let handoff: PrefillHandoff | undefined;
      try {
        const items = this.prefillHandle.remoteStream('prefillStream', [req]) as AsyncIterable<PrefillItem>;
        for await (const item of items) {
          if ('first' in item) {
            first = item.first;
            yield first;
            if (first.finished) return;
          } else if (first) handoff = { ...item, first };
        }
        if (!handoff) throw new UnavailableError('the prefill stream ended without a handoff');
      } catch (err) {
        if (!transferFailure(err) || getRequestContext()?.signal.aborted) throw err;
        this.pdStats.fallbacks++;
        yield* this.local(req, skipOf(first));
        return;
      }
      const sentAt = performance.now();
      this.pdStats.prefilled(req.tokenIds.length, handoff);
      if (handoff.handoff.kv === null) return;
      if (target !== undefined) this.pdStats.pinned++;
      const decode =
        target === undefined ? this.decodeHandle : this.decodeHandle.options({ routingKey: pinnedReplicaKey(target) });
      let yielded = false;
      let reported = false;
      try {
        const stream = decode.remoteStream('decode', [
          req,
          handoff.handoff,
          handoff.first,
        ]) as AsyncIterable<DecodeItem>;
        for await (const item of stream) {
          if ('report' in item) {
            if (!reported)
              this.pdStats.transferred(req.tokenIds.length, performance.now() - sentAt, handoff.handoff.kv!.byteLength);
            const includes = !counted && item.report.replicaId === target ? blocks : 0;
            if (includes > 0) counted = true;
            else if (!reported) uncount();
            reported = true;
            this.choice.report(item.report, Date.now(), includes);
            continue;
          }
          if (!yielded) this.pdStats.resumed(performance.now() - sentAt);
          yielded = true;
          yield item.delta;
        }
      } catch (err) {
        if (target !== undefined) this.choice.forget(target);
        if (yielded || getRequestContext()?.signal.aborted || !transferFailure(err)) throw err;
        this.pdStats.fallbacks++;
        yield* this.local(req, skipOf(handoff.first));
      }
    } finally {
      uncount();
    }
  }

  /** The router's own counters: requests by path, KV bytes and transfer time per prompt token. */
  pdRouterStats(): ReturnType<PdStats['snapshot']> {
    return this.pdStats.snapshot();
  }

  private async *local(
    req: PdRequest,
    skip: { tokens: number; chars: number; seen?: number[] },
  ): AsyncGenerator<PdDelta> {
    const stream = this.decodeHandle.remoteStream('generateLocal', [req, skip]) as AsyncIterable<DecodeItem>;
    for await (const item of stream) {
      if ('report' in item) this.choice.report(item.report, Date.now());
      else yield item.delta;
    }
  }
}

/** What a local run leaves out: the output the prefill side already sent (nothing when it sent none). */
function skipOf(first: PdDelta | undefined): { tokens: number; chars: number; seen?: number[] } {
  if (!first) return { tokens: 0, chars: 0 };
  return { tokens: first.tokenIds.length, chars: first.text.length, seen: (first.tokens ?? []).map((t) => t.id) };
}

/** Failures of the transfer path (a replica gone or full, a payload refused), not of the request itself. */
export function transferFailure(err: unknown): boolean {
  if (err instanceof ActorDiedError || err instanceof UnavailableError || err instanceof BackPressureError) return true;
  if (err instanceof ModelUnavailableError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  // E_KV_CAPACITY: the request could never fit a pool, anywhere (the engine's own check).
  return typeof code === 'string' && code.startsWith('E_KV') && code !== 'E_KV_CAPACITY';
}
