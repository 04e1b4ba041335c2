/**
 * Hugging Face tokenizer.json through @huggingface/tokenizers (pure JS, the same code transformers.js
 * uses): BPE with byte fallback, Metaspace/ByteLevel pre-tokenizers, added and special tokens.
 * This wrapper adds what the engine needs on top: BOS handling under our control, special-token ids,
 * and tokenBytes() for incremental detokenization.
 */
import { readFileSync } from 'node:fs';
import { Tokenizer as HfLibTokenizer } from '@huggingface/tokenizers';
import { ModelFormatError } from '../errors.js';
import type { EncodeOptions, Tokenizer } from './tokenizer.js';

export interface HfTokenizerOptions {
  /** tokenizer_config.json contents, if the model has one. */
  tokenizerConfig?: Record<string, unknown>;
  /** Overrides the BOS id found from tokenizer_config's bos_token (e.g. from config.json). */
  bosId?: number;
  /** Overrides the EOS id found from tokenizer_config's eos_token. */
  eosId?: number;
}

type Json = Record<string, any>;

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly stripsLeadingSpace: boolean;
  /** Whether encode() adds BOS when the caller does not say (what the tokenizer's post-processor does). */
  readonly defaultAddBos: boolean;
  private readonly lib: HfLibTokenizer;
  private readonly special = new Set<number>();
  private readonly byteLevel: boolean;
  private readonly bytesCache = new Map<number, Uint8Array>();

  constructor(
    json: Json,
    options: HfTokenizerOptions = {},
    readonly file = 'tokenizer.json',
  ) {
    const cfg = options.tokenizerConfig ?? {};
    try {
      this.lib = new HfLibTokenizer(json, cfg);
    } catch (err) {
      throw new ModelFormatError(file, `cannot build tokenizer: ${(err as Error).message}`);
    }
    for (const t of (json.added_tokens ?? []) as Json[]) if (t.special) this.special.add(t.id);
    let maxId = -1;
    for (const id of this.lib.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.bosId = options.bosId ?? this.idOf(cfg.bos_token) ?? -1;
    this.eosId = options.eosId ?? this.idOf(cfg.eos_token) ?? -1;
    const decoders = flatten(json.decoder);
    this.byteLevel = decoders.some((d) => d.type === 'ByteLevel');
    this.stripsLeadingSpace = decoders.some(
      (d) =>
        (d.type === 'Strip' && d.start > 0) ||
        (d.type === 'Metaspace' &&
          (d.add_prefix_space === true || d.prepend_scheme === 'always' || d.prepend_scheme === 'first')),
    );
    this.defaultAddBos = this.bosId >= 0 && this.lib.encode('a').ids[0] === this.bosId;
  }

  /** Reads tokenizer.json (and the parsed tokenizer_config.json, if any). */
  static fromFile(file: string, options: HfTokenizerOptions = {}): HfTokenizer {
    let json: Json;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      throw new ModelFormatError(
        file,
        missing ? 'missing tokenizer (tokenizer.json not found)' : `not valid JSON: ${(err as Error).message}`,
      );
    }
    if (!json?.model) throw new ModelFormatError(file, 'no "model" section: not a tokenizer.json');
    return new HfTokenizer(json, options, file);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = this.lib.encode(text, { add_special_tokens: false }).ids;
    return (options.addBos ?? this.defaultAddBos) && this.bosId >= 0 ? [this.bosId, ...ids] : ids;
  }

  decode(ids: ArrayLike<number>): string {
    return this.lib.decode(Array.from(ids), { skip_special_tokens: true });
  }

  tokenBytes(id: number): Uint8Array {
    let bytes = this.bytesCache.get(id);
    if (!bytes) {
      bytes = this.computeBytes(id);
      this.bytesCache.set(id, bytes);
    }
    return bytes;
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  private computeBytes(id: number): Uint8Array {
    const piece = this.lib.id_to_token(id);
    if (piece === undefined || this.special.has(id)) return new Uint8Array(0);
    const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
    if (byte) return Uint8Array.of(parseInt(byte[1]!, 16));
    if (this.byteLevel) return Uint8Array.from([...piece].map((ch) => unicodeToByte().get(ch) ?? 0x3f));
    return new Uint8Array(Buffer.from(piece.replaceAll('▁', ' '), 'utf8'));
  }

  private idOf(token: unknown): number | undefined {
    const content = typeof token === 'string' ? token : (token as Json | null)?.content;
    return typeof content === 'string' ? this.lib.token_to_id(content) : undefined;
  }
}

function flatten(node: Json | null | undefined): Json[] {
  if (!node) return [];
  return node.type === 'Sequence' ? (node.decoders ?? node.pretokenizers ?? []).flatMap(flatten) : [node];
}

let byteMap: Map<string, number> | undefined;
/** Inverse of GPT-2's bytes_to_unicode(): the printable stand-in character of each byte → the byte. */
function unicodeToByte(): Map<string, number> {
  if (byteMap) return byteMap;
  byteMap = new Map();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    byteMap.set(String.fromCodePoint(printable ? b : 256 + extra++), b);
  }
  return byteMap;
}
