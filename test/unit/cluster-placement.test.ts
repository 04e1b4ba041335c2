import { describe, expect, it } from 'vitest';
import { ClusterPlacement } from '../../packages/core/src/cluster/cluster-placement.js';

const req = (cpus: number, gpus: number, memoryMb = 0) => ({ cpus, gpus, memoryMb });

describe('cluster placement', () => {
  it("a GPU request lands on a node that has GPUs, with that node's GPU ids", () => {
    const p = new ClusterPlacement({ cpus: 8, gpus: 0, memoryMb: 16_000 });
    p.addNode('g1', { cpus: 4, gpus: 2, memoryMb: 32_000 });
    const a = p.allocate(req(1, 1))!;
    expect(a.nodeId).toBe('g1');
    expect(a.gpuShares).toEqual([{ id: 0, share: 1 }]);
    expect(p.allocate(req(1, 1))!.gpuShares).toEqual([{ id: 1, share: 1 }]);
    expect(p.allocate(req(1, 1))).toBeNull();
    expect(p.explain(req(1, 1))).toMatch(/local: needs 1 GPUs, the node has 0; g1: busy .*GPU shares \[0, 0\]/);
  });

  it('CPU-only requests stay off GPU nodes while another node fits, and use them when none does', () => {
    const p = new ClusterPlacement({ cpus: 1, gpus: 0, memoryMb: 1000 });
    p.addNode('g1', { cpus: 8, gpus: 1, memoryMb: 1000 });
    expect(p.allocate(req(1, 0))!.nodeId).toBeUndefined();
    expect(p.allocate(req(1, 0))!.nodeId).toBe('g1');
  });

  it('pack fills one node first; spread balances replicas over nodes', () => {
    const nodes = (strategy: 'pack' | 'spread') => {
      const p = new ClusterPlacement({ cpus: 4, gpus: 0, memoryMb: 1000 }, strategy);
      p.addNode('a', { cpus: 4, gpus: 0, memoryMb: 1000 });
      p.addNode('b', { cpus: 4, gpus: 0, memoryMb: 1000 });
      return Array.from({ length: 6 }, () => p.allocate(req(1, 0))!.nodeId ?? 'local');
    };
    expect(nodes('pack')).toEqual(['local', 'local', 'local', 'local', 'a', 'a']);
    expect(nodes('spread')).toEqual(['local', 'a', 'b', 'local', 'a', 'b']);
  });

  it('fractional GPUs share a GPU on one node', () => {
    const p = new ClusterPlacement({ cpus: 4, gpus: 0, memoryMb: 1000 });
    p.addNode('g', { cpus: 4, gpus: 1, memoryMb: 1000 });
    const allocs = [p.allocate(req(0, 0.5)), p.allocate(req(0, 0.5))];
    expect(allocs.map((a) => a?.gpuShares)).toEqual([[{ id: 0, share: 0.5 }], [{ id: 0, share: 0.5 }]]);
    expect(p.allocate(req(0, 0.25))).toBeNull();
    p.free(allocs[0]!);
    expect(p.allocate(req(0, 0.25))!.nodeId).toBe('g');
  });

  it('a removed node takes no more replicas and frees of its allocations are ignored', () => {
    const p = new ClusterPlacement({ cpus: 1, gpus: 0, memoryMb: 1000 });
    p.addNode('g', { cpus: 4, gpus: 1, memoryMb: 1000 });
    const a = p.allocate(req(0, 1))!;
    p.removeNode('g');
    expect(() => p.free(a)).not.toThrow();
    expect(p.allocate(req(0, 1))).toBeNull();
    expect(p.unsatisfiable()).toBeNull();
    p.addNode('g', { cpus: 4, gpus: 1, memoryMb: 1000 });
    expect(p.allocate(req(0, 1))!.nodeId).toBe('g');
    expect(p.usage('g')).toMatchObject({ gpus: 0, replicas: 1 });
  });

  it("refuses the head's node id for an agent", () => {
    const p = new ClusterPlacement({ cpus: 1, gpus: 0, memoryMb: 1000 });
    expect(() => p.addNode('local', { cpus: 1, gpus: 0, memoryMb: 1 })).toThrow(/head/);
  });
});
