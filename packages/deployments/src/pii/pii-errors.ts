/** The PII guard's refusal: a 400 naming the kinds of personal data found, never the values. */
import { registerErrorClasses } from '@flotilla/core';
import { InvalidParameterError } from '../errors.js';
import type { PiiKind } from './recognizers.js';

export class PiiBlockedError extends InvalidParameterError {
  override readonly code: string = 'E_PII_BLOCKED';
  readonly kinds: PiiKind[];
  constructor(kinds: PiiKind[], param = 'prompt') {
    super(param, `contains personal data (${kinds.join(', ')}); remove it and retry`);
    this.kinds = kinds;
  }
}
registerErrorClasses({ PiiBlockedError });
