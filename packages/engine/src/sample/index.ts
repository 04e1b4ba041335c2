/** Sampling in TypeScript with the native sampler's semantics: distributions, the rejection sampler, row verification, logprob helpers. */
export {
  verifyProposals,
  verifyGreedy,
  drawResidual,
  drawFrom,
  type VerifyDraws,
  type VerifyResult,
} from './rejection-sampler.js';
export {
  uniform,
  applyPenalties,
  argmax,
  candidates,
  walk,
  distribution,
  sampleLogits,
  logprobOfRow,
  type DistributionParams,
} from './sampler.js';
export { verifyRows, type RowsProposal } from './verify-rows.js';
