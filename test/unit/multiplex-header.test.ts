import { describe, expect, it } from 'vitest';
import { Metadata } from '@grpc/grpc-js';
import {
  MAX_MODEL_ID_LENGTH,
  modelIdFromHeaders,
  modelIdFromMetadata,
} from '../../packages/core/src/ingress/multiplex-header.js';
import { BadRequestError } from '../../packages/core/src/errors.js';

describe('multiplexed model id at the proxies', () => {
  it("reads Ray Serve's header, its hyphenated spelling, trimmed; absent or empty is none", () => {
    expect(modelIdFromHeaders({ serve_multiplexed_model_id: ' m1 ' })).toBe('m1');
    expect(modelIdFromHeaders({ 'serve-multiplexed-model-id': 'm2' })).toBe('m2');
    expect(modelIdFromHeaders({ serve_multiplexed_model_id: '' })).toBeUndefined();
    expect(modelIdFromHeaders({ accept: 'x' })).toBeUndefined();
  });

  it('refuses an id given twice or longer than the limit with a 400', () => {
    expect(() => modelIdFromHeaders({ serve_multiplexed_model_id: ['a', 'b'] })).toThrow(BadRequestError);
    const long = 'x'.repeat(MAX_MODEL_ID_LENGTH + 1);
    expect(() => modelIdFromHeaders({ serve_multiplexed_model_id: long })).toThrow(/characters long/);
  });

  it('reads gRPC metadata under either name', () => {
    const md = new Metadata();
    expect(modelIdFromMetadata(md)).toBeUndefined();
    md.set('multiplexed_model_id', 'g1');
    expect(modelIdFromMetadata(md)).toBe('g1');
    md.set('serve_multiplexed_model_id', 'g2');
    expect(modelIdFromMetadata(md)).toBe('g2');
  });
});
