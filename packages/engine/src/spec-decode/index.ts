/** Speculative decoding: proposers (n-gram lookup, draft model), the decoder, metrics. Verification lives in sample/. */
export { SpecDecoder, type SpecStepResult, type SpeculativeMethod, type SpecDecoderOptions } from './spec-decoder.js';
export { DraftProposer, type DraftProposal, type DraftRequest, type DraftProposerOptions } from './draft-proposer.js';
export { proposeNgram, type NgramOptions } from './ngram-proposer.js';
export { SpecDecodeMetrics, type SpecDecodeStats } from './spec-metrics.js';
export { createSpecDecoder, type EngineSpeculativeOptions } from './speculative-options.js';
export { SpeculativeConfigError, specDecodeErrorClasses } from './errors.js';
export { SessionDrafter, SessionVerifier, type SessionCall, type SessionModelOptions } from './session-models.js';
