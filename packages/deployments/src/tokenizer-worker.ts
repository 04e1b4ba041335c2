/**
 * The worker thread of OffLoopTokenizer (off-loop-tokenizer.ts): builds the model's tokenizer from the same
 * files the engine read (readModelSpec, which never touches weights), answers with the ids of a probe text so
 * the owner can check both tokenizers agree, then encodes texts one at a time.
 *   in:  workerData TokenizerWorkerData; messages TokenizerJob
 *   out: TokenizerWorkerReply ('ready' once, or 'failed'; then one 'done' / 'error' per job, by id)
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readModelSpec, type Tokenizer } from '@flotilla/engine';

export interface TokenizerWorkerData {
  model: string;
  tokenizer: string | undefined;
  probe: string;
}
export interface TokenizerJob {
  id: number;
  text: string;
  addBos: boolean | undefined;
}
export type TokenizerWorkerReply =
  | { type: 'ready'; probeIds: number[] }
  | { type: 'failed'; message: string }
  | { type: 'done'; id: number; ids: Uint32Array }
  | { type: 'error'; id: number; message: string };

const port = parentPort!;
const data = workerData as TokenizerWorkerData;
const send = (reply: TokenizerWorkerReply, transfer: ArrayBuffer[] = []) => port.postMessage(reply, transfer);

let tokenizer: Tokenizer;
try {
  const spec = await readModelSpec(data.model, data.tokenizer !== undefined ? { tokenizerPath: data.tokenizer } : {});
  tokenizer = spec.tokenizer;
  send({ type: 'ready', probeIds: tokenizer.encode(data.probe) });
} catch (err) {
  send({ type: 'failed', message: (err as Error).message });
  process.exit(0);
}

port.on('message', (job: TokenizerJob) => {
  try {
    const ids = Uint32Array.from(tokenizer.encode(job.text, job.addBos === undefined ? {} : { addBos: job.addBos }));
    send({ type: 'done', id: job.id, ids }, [ids.buffer as ArrayBuffer]);
  } catch (err) {
    send({ type: 'error', id: job.id, message: (err as Error).message });
  }
});
