/** The content-safety guard's refusal: a 400 saying a classifier judged the prompt unsafe (score, never the text). */
import { registerErrorClasses } from '@flotilla/core';
import { InvalidParameterError } from '../errors.js';

export class ContentBlockedError extends InvalidParameterError {
  override readonly code: string = 'E_CONTENT_BLOCKED';
  readonly score: number;
  constructor(score: number, param = 'prompt') {
    super(param, `was judged unsafe by the content classifier (score ${score.toFixed(3)}); rephrase and retry`);
    this.score = score;
  }
}
registerErrorClasses({ ContentBlockedError });
