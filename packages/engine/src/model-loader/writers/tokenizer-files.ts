/** Writes a SyntheticVocab as llama2.c tokenizer.bin and as Hugging Face tokenizer.json (+ config). */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SyntheticVocab } from './synthetic-vocab.js';

/** tokenizer.bin: i32 max_token_length, then per token f32 score, i32 length, bytes ('▁' written as ' '). */
export async function writeTokenizerBin(file: string, vocab: SyntheticVocab): Promise<void> {
  const bytes = vocab.pieces.map((p) => Buffer.from(p.replaceAll('▁', ' '), 'utf8'));
  const out = Buffer.alloc(4 + bytes.reduce((n, b) => n + 8 + b.length, 0));
  out.writeInt32LE(Math.max(...bytes.map((b) => b.length)), 0);
  let at = 4;
  bytes.forEach((b, i) => {
    out.writeFloatLE(vocab.scores[i]!, at);
    out.writeInt32LE(b.length, at + 4);
    b.copy(out, at + 8);
    at += 8 + b.length;
  });
  await writeFile(file, out);
}

const special = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/** tokenizer.json and tokenizer_config.json in the layout transformers writes for Llama tokenizers. */
export async function writeHfTokenizer(dir: string, vocab: SyntheticVocab, chatTemplate?: string): Promise<void> {
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab.pieces.map((p, i) => [p, i])),
      merges: vocab.merges,
    },
  };
  const config = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    tokenizer_class: 'LlamaTokenizer',
    ...(chatTemplate ? { chat_template: chatTemplate } : {}),
  };
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
}
