/** Sequential writer for model files: keeps the position, pads to alignments, writes chunk by chunk. */
import { open, type FileHandle } from 'node:fs/promises';

export class FileSink {
  pos = 0;
  private constructor(
    private readonly fh: FileHandle,
    readonly file: string,
  ) {}

  static async create(file: string): Promise<FileSink> {
    return new FileSink(await open(file, 'w'), file);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.fh.write(bytes, done, bytes.length - done);
      done += bytesWritten;
    }
    this.pos += bytes.length;
  }

  /** Zero bytes up to the next multiple of `alignment`. */
  async pad(alignment: number): Promise<void> {
    const n = (alignment - (this.pos % alignment)) % alignment;
    if (n) await this.write(new Uint8Array(n));
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
