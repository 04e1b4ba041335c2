export type { Tokenizer, EncodeOptions } from './tokenizer.js';
export { SentencePieceBpe, type SentencePieceVocab } from './sentencepiece-bpe.js';
export { readLlama2cTokenizer, parseTokenizerBin } from './llama2c-tokenizer.js';
export { HfTokenizer, type HfTokenizerOptions } from './hf-tokenizer.js';
export { ggufTokenizer } from './gguf-tokenizer.js';
