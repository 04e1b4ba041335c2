/**
 * The tokenizer embedded in a GGUF file (tokenizer.ggml.*). Only the 'llama' model (SentencePiece
 * pieces with scores, '▁' for spaces, <0xNN> byte tokens) is supported: it is encoded with the same
 * algorithm as llama2.c's tokenizer.bin.
 */
import { ModelFormatError, UnsupportedModelError } from '../errors.js';
import { SentencePieceBpe } from './sentencepiece-bpe.js';

type Metadata = Map<string, unknown>;

/** token_type values of llama.cpp's vocabulary. */
const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export function ggufTokenizer(file: string, md: Metadata): SentencePieceBpe {
  const model = md.get('tokenizer.ggml.model');
  if (model === undefined)
    throw new ModelFormatError(file, 'missing tokenizer: no tokenizer.ggml.model in the metadata');
  if (model !== 'llama')
    throw new UnsupportedModelError(
      file,
      `tokenizer model '${String(model)}' (only 'llama' SentencePiece vocabularies)`,
    );
  const tokens = md.get('tokenizer.ggml.tokens');
  if (!Array.isArray(tokens) || tokens.length === 0)
    throw new ModelFormatError(file, 'missing tokenizer: no tokenizer.ggml.tokens');
  const n = tokens.length;
  const scores = md.get('tokenizer.ggml.scores') as Float32Array | undefined;
  const types = md.get('tokenizer.ggml.token_type') as Int32Array | undefined;
  if (scores && scores.length !== n)
    throw new ModelFormatError(file, `tokenizer.ggml.scores has ${scores.length} entries for ${n} tokens`);
  if (types && types.length !== n)
    throw new ModelFormatError(file, `tokenizer.ggml.token_type has ${types.length} entries for ${n} tokens`);
  const pieces = (tokens as string[]).map((t) => new Uint8Array(Buffer.from(String(t), 'utf8')));
  const special = new Set<number>();
  for (let i = 0; i < n; i++)
    if (types && (types[i] === TOKEN_TYPE.CONTROL || types[i] === TOKEN_TYPE.UNKNOWN)) special.add(i);
  const bosId = num(md, 'tokenizer.ggml.bos_token_id', 1);
  const eosId = num(md, 'tokenizer.ggml.eos_token_id', 2);
  special.add(bosId).add(eosId);
  const byte0 = (tokens as string[]).indexOf('<0x00>');
  return new SentencePieceBpe({
    pieces,
    scores: scores ?? new Float32Array(n),
    special,
    bosId,
    eosId,
    spaceMarker: '▁',
    byteFallbackBase: byte0,
  });
}

function num(md: Metadata, key: string, fallback: number): number {
  const v = md.get(key);
  return typeof v === 'number' ? v : fallback;
}
