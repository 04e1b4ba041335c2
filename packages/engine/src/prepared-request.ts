/**
 * A request checked by LLMEngine.prepare() and not yet started: the prompt's token ids and the
 * resolved sampling parameters. Handing it to generate() starts it without tokenizing or checking again;
 * it belongs to the engine that prepared it (the checks depend on that engine's model and limits).
 */
import type { ResolvedSamplingParams } from './sampling-params.js';

export class PreparedRequest {
  #text: string | null;
  readonly #decode: (ids: readonly number[]) => string;
  readonly #owner: object;

  constructor(
    owner: object,
    readonly tokenIds: readonly number[],
    readonly params: ResolvedSamplingParams,
    text: string | null,
    decode: (ids: readonly number[]) => string,
    /** The LoRA adapter it runs with (a name the engine has loaded), or none. */
    readonly adapter?: string,
  ) {
    this.#owner = owner;
    this.#text = text;
    this.#decode = decode;
  }

  /** The prompt as text (a chat prompt after its template; token ids decoded, on first use). */
  get promptText(): string {
    this.#text ??= this.#decode(this.tokenIds);
    return this.#text;
  }

  /** True when `engine` prepared it. */
  preparedBy(engine: object): boolean {
    return this.#owner === engine;
  }
}
