/**
 * Which reader a path needs, from the path and its first bytes:
 *  - a directory with config.json, or a *.safetensors / config.json file inside one → 'safetensors' (HF dir);
 *  - a directory holding exactly one *.gguf → that file; a file starting with "GGUF" → 'gguf';
 *  - any other file whose 28-byte header is a plausible llama2.c config with a matching file size → 'llama2c'.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ModelFormatError } from '../errors.js';
import { fileSize, readBytesAt } from './binary-file.js';
import { GGUF_MAGIC } from './gguf-file.js';
import { LLAMA2C_HEADER_BYTES, llama2cLayout, parseLlama2cHeader } from './llama2c-reader.js';
import type { ModelFormat } from './model-spec.js';

export interface DetectedFormat {
  format: ModelFormat;
  /** The file (llama2c, gguf) or directory (safetensors) the reader takes, absolute. */
  path: string;
}

export function detectFormat(p: string): DetectedFormat {
  const abs = path.resolve(p);
  let isDir: boolean;
  try {
    isDir = statSync(abs).isDirectory();
  } catch {
    throw new ModelFormatError(abs, 'model path not found');
  }
  return isDir ? detectDir(abs) : detectFile(abs);
}

function detectDir(dir: string): DetectedFormat {
  const names = readdirSync(dir);
  if (names.includes('config.json')) return { format: 'safetensors', path: dir };
  const ggufs = names.filter((n) => n.toLowerCase().endsWith('.gguf'));
  if (ggufs.length === 1) return detectFile(path.join(dir, ggufs[0]!));
  const hint =
    ggufs.length > 1
      ? `${ggufs.length} .gguf files, name one`
      : 'no config.json or .gguf file; pass the checkpoint file';
  throw new ModelFormatError(dir, `cannot tell the model format: ${hint}`);
}

function detectFile(file: string): DetectedFormat {
  const base = path.basename(file);
  if (base === 'config.json' || base.endsWith('.safetensors') || base.endsWith('.safetensors.index.json')) {
    return { format: 'safetensors', path: path.dirname(file) };
  }
  const size = fileSize(file);
  if (size >= 4 && readBytesAt(file, 0, 4, 'magic').readUInt32LE(0) === GGUF_MAGIC)
    return { format: 'gguf', path: file };
  if (file.toLowerCase().endsWith('.gguf')) throw new ModelFormatError(file, 'wrong magic: not a GGUF file');
  if (size < LLAMA2C_HEADER_BYTES) throw new ModelFormatError(file, `truncated or unknown format: ${size} bytes`);
  // parseLlama2cHeader throws "not a llama2.c checkpoint" for anything implausible: the unknown-format case
  const { config } = parseLlama2cHeader(file, readBytesAt(file, 0, LLAMA2C_HEADER_BYTES));
  const { end } = llama2cLayout(config);
  if (size < end)
    throw new ModelFormatError(file, `truncated: the llama2.c header implies ${end} bytes, the file has ${size}`);
  if (size > end)
    throw new ModelFormatError(
      file,
      `wrong magic: not a GGUF file, and not a llama2.c checkpoint (header implies ${end} bytes, the file has ${size})`,
    );
  return { format: 'llama2c', path: file };
}
