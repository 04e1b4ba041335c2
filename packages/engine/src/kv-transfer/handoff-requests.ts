/**
 * The engine's requests that end or begin with a KV handoff (prefill/decode disaggregation,
 * docs/kv-transfer.md): a prefill() request settles its waiter instead of streaming (its first token
 * queues the KV export), and a decode engine admits a handoff as a request whose prompt K/V is
 * imported between two steps, continuing from the token after the first.
 */
import { DuplicateRequestError, SamplingParamsError } from '../errors.js';
import type { GuidedDecoding } from '../guided/guided-decoding.js';
import type { PreparedRequest } from '../prepared-request.js';
import { type RequestOutput, RequestStream } from '../request-output.js';
import { RequestState, SampleState } from '../request-state.js';
import type { RequestTable } from '../request-table.js';
import type { ResolvedSamplingParams } from '../sampling-params.js';
import type { Scheduler } from '../scheduler.js';
import { Sequence } from '../sequence.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { checkHandoff } from './check-handoff.js';
import { PrefillAbortedError } from './kv-errors.js';
import { handoffOf, type HandoffOptions, type KvHandoff, type PrefillWaiter } from './kv-handoff.js';
import type { KvTransferQueue } from './kv-transfer-queue.js';

/** What of the engine a handoff request uses: its tables and queues, and a few of its checks. */
export interface HandoffHost {
  readonly table: RequestTable;
  readonly kv: KvTransferQueue;
  readonly scheduler: Scheduler;
  readonly tokenizer: Tokenizer;
  readonly maxModelLen: number;
  /** Null when guided decoding is off. */
  guided(): GuidedDecoding | null;
  newSeqId(): number;
  stopTokenIdsOf(params: ResolvedSamplingParams): number[];
  /** KvCapacityError when a request of up to maxTokens could never fit. */
  checkCapacity(maxTokens: number): void;
  abort(requestId: string): boolean;
  /** Starts the step loop if it has work. */
  kick(): void;
}

/**
 * prefill() after admission: one sample only (SamplingParamsError otherwise); `start` starts the
 * request with the waiter its outputs settle (settlePrefill), and the promise is the waiter's.
 */
export function awaitPrefill(prepared: PreparedRequest, start: (waiter: PrefillWaiter) => void): Promise<KvHandoff> {
  if (prepared.params.n !== 1) throw new SamplingParamsError('n', 'prefill() hands over one sample: n must be 1');
  return new Promise<KvHandoff>((resolve, reject) => {
    start({ resolve, reject, firstOutput: null, firstTokenId: -1 });
  });
}

/**
 * A prefill() request's output: the first token queues the export (blocks held until it is done);
 * a finished one (a stop at the first token, or an abort) settles it now.
 */
export function settlePrefill(
  host: Pick<HandoffHost, 'table' | 'kv' | 'scheduler'>,
  req: RequestState,
  sample: SampleState,
  token: number,
  out: RequestOutput,
): void {
  const waiter = req.handoff!;
  const seq = sample.seq;
  if (!out.finished) {
    waiter.firstOutput = out;
    waiter.firstTokenId = token;
    host.kv.queueExport(seq, (kv, err) => {
      host.scheduler.finish(seq, 'abort'); // handed off (or failed): blocks freed, nothing streamed
      host.table.dropSample(sample);
      host.table.retireRequest(req);
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
  host.table.retireSample(req, sample);
}

/**
 * generateFromHandoff(): checks the handoff synchronously (checkHandoff's errors, SamplingParamsError
 * for guided on an engine without it, KvCapacityError, DuplicateRequestError), registers the request
 * with its first token already appended and queues the K/V import; the loop decodes on once imported.
 */
export function admitHandoff(host: HandoffHost, handoff: KvHandoff, options: HandoffOptions): RequestStream {
  const kv = checkHandoff(handoff, {
    pool: host.kv.poolShape(),
    vocabSize: host.tokenizer.vocabSize,
    maxModelLen: host.maxModelLen,
  });
  const params = handoff.params;
  const guided = host.guided();
  if (params.guided && !guided)
    throw new SamplingParamsError('guided', 'guided decoding is off on this engine (guidedDecoding: false)');
  host.checkCapacity(handoff.promptTokenIds.length + params.maxTokens);
  const requestId = options.requestId ?? handoff.requestId;
  if (host.table.has(requestId))
    throw new DuplicateRequestError(`request id ${requestId} is already in flight`, { requestId });
  const arrivalTime = performance.now();
  const seq = new Sequence({
    seqId: host.newSeqId(),
    requestId,
    index: 0,
    promptTokenIds: handoff.promptTokenIds,
    params,
    seed: handoff.seed,
    stopTokenIds: host.stopTokenIdsOf(params),
    blockSize: host.scheduler.blockManager.blockSize,
    arrivalTime,
  });
  const first = handoff.firstTokenId;
  seq.appendToken(first);
  if (params.guided && guided) {
    guided.compile(params.guided);
    seq.guided = guided.matcher(params.guided, seq.stopTokenIds);
    seq.guided.accept(first);
    void seq.guided.refresh();
  }
  const sample = new SampleState(seq, host.tokenizer);
  sample.acceptToken(first);
  sample.output(requestId, first, null); // the prefill engine sent it: only its text state is kept
  sample.firstTokenAt = arrivalTime;
  const stream = new RequestStream(requestId, () => host.abort(requestId));
  const req = new RequestState(requestId, [sample], stream, arrivalTime);
  host.table.add(req);
  host.kv.queueImport(seq, kv, handoff.promptTokenIds.length, options.registerPrefix ?? true, (err) =>
    host.table.fail(req, err as Error),
  );
  if (options.signal) host.table.attachSignal(req, options.signal, () => host.abort(requestId));
  host.kick();
  return stream;
}
