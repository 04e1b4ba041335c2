import { describe, expect, it } from 'vitest';
import {
  PlacementBook,
  cudaVisibleDevices,
  detectLocalResources,
} from '../../packages/core/src/controller/placement.js';

const req = (r: Partial<{ cpus: number; gpus: number; memoryMb: number }>) => ({ cpus: 0, gpus: 0, memoryMb: 0, ...r });

describe('PlacementBook', () => {
  it('accounts CPUs and memory, returning null when out and accepting again after free', () => {
    const book = new PlacementBook({ cpus: 4, memoryMb: 1000, gpus: 0 });
    const a = book.allocate(req({ cpus: 3, memoryMb: 600 }))!;
    expect(a).not.toBeNull();
    expect(book.canAllocate(req({ cpus: 2 }))).toBe(false);
    expect(book.allocate(req({ memoryMb: 500 }))).toBeNull();
    book.free(a);
    expect(book.available).toMatchObject({ cpus: 4, memoryMb: 1000 });
    expect(book.canAllocate(req({ cpus: 4, memoryMb: 1000 }))).toBe(true);
  });

  it('packs fractional GPUs onto the fullest GPU that still fits (best fit)', () => {
    const book = new PlacementBook({ cpus: 8, memoryMb: 0, gpus: 2 });
    const a = book.allocate(req({ gpus: 0.5 }))!;
    const b = book.allocate(req({ gpus: 0.25 }))!;
    expect(b.gpuShares).toEqual([{ id: a.gpuShares[0]!.id, share: 0.25 }]);
    const c = book.allocate(req({ gpus: 0.5 }))!;
    expect(c.gpuShares[0]!.id).not.toBe(a.gpuShares[0]!.id);
    expect(book.allocate(req({ gpus: 0.25 }))!.gpuShares[0]!.id).toBe(a.gpuShares[0]!.id);
    expect(book.available.gpuFree).toEqual([0, 0.5]);
    expect(book.allocate(req({ gpus: 1 }))).toBeNull();
  });

  it('gives whole GPUs to requests of one or more and frees them', () => {
    const book = new PlacementBook({ cpus: 8, memoryMb: 0, gpus: 4 });
    const half = book.allocate(req({ gpus: 0.5 }))!;
    const two = book.allocate(req({ gpus: 2 }))!;
    expect(two.gpuShares.map((g) => g.share)).toEqual([1, 1]);
    expect(two.gpuShares.map((g) => g.id)).not.toContain(half.gpuShares[0]!.id);
    expect(book.allocate(req({ gpus: 2 }))).toBeNull();
    book.free(two);
    expect(book.allocate(req({ gpus: 3 }))).not.toBeNull();
  });

  it('tells requests that can never fit from ones that must wait', () => {
    const book = new PlacementBook({ cpus: 2, memoryMb: 512, gpus: 1 });
    expect(book.unsatisfiable(req({ gpus: 2 }))).toMatch(/needs 2 GPUs, the node has 1/);
    expect(book.unsatisfiable(req({ cpus: 3 }))).toMatch(/CPUs/);
    expect(book.unsatisfiable(req({ memoryMb: 1024 }))).toMatch(/MiB/);
    book.allocate(req({ gpus: 1 }));
    expect(book.unsatisfiable(req({ gpus: 1 }))).toBeNull();
    expect(book.canAllocate(req({ gpus: 1 }))).toBe(false);
  });
});

describe('GPU environment', () => {
  it('detects GPUs from FLOTILLA_GPUS, else CUDA_VISIBLE_DEVICES', () => {
    expect(detectLocalResources({ FLOTILLA_GPUS: '2' }, 8, 1000).gpus).toBe(2);
    expect(detectLocalResources({ CUDA_VISIBLE_DEVICES: '0,3' }, 8, 1000).gpus).toBe(2);
    expect(detectLocalResources({ CUDA_VISIBLE_DEVICES: '' }, 8, 1000).gpus).toBe(0);
    expect(detectLocalResources({}, 8, 1000)).toEqual({ cpus: 8, memoryMb: 1000, gpus: 0 });
  });

  it("maps allocated GPU ids through the parent's CUDA_VISIBLE_DEVICES", () => {
    const alloc = {
      cpus: 0,
      memoryMb: 0,
      gpuShares: [
        { id: 1, share: 1 },
        { id: 0, share: 1 },
      ],
    };
    expect(cudaVisibleDevices(alloc, '4,6')).toBe('6,4');
    expect(cudaVisibleDevices(alloc, undefined)).toBe('1,0');
  });
});
