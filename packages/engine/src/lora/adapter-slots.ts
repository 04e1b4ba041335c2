/**
 * Which adapter sits in which of the engine's LoRA slots: a pure policy over plain data (the manager
 * does the loading). A slot is pinned while requests use its adapter (and while it loads) and is never
 * evicted then; placing an adapter that is not resident takes a free slot, else evicts the least
 * recently used unpinned one, else waits (returns null) — a running request never loses its adapter.
 */
export interface Placement {
  slot: number;
  /** The slot must be (re)loaded with the adapter before use. */
  load: boolean;
  /** The adapter that was resident in the slot and is evicted by this placement. */
  evicted?: string;
}

export class AdapterSlots {
  /** (capacity) the adapter name resident in each slot, or null. */
  private readonly names: (string | null)[];
  /** (capacity) pins: requests using the slot, plus one while it loads. */
  private readonly pins: number[];
  /** (capacity) logical time of last use, for LRU. */
  private readonly lastUse: number[];
  private readonly byName = new Map<string, number>();
  private clock = 0;

  constructor(readonly capacity: number) {
    this.names = new Array(capacity).fill(null);
    this.pins = new Array(capacity).fill(0);
    this.lastUse = new Array(capacity).fill(0);
  }

  /** The slot holding `name`, or undefined. */
  slotOf(name: string): number | undefined {
    return this.byName.get(name);
  }

  nameIn(slot: number): string | null {
    return this.names[slot]!;
  }

  pinCount(slot: number): number {
    return this.pins[slot]!;
  }

  /** Names resident now, in slot order. */
  resident(): string[] {
    return this.names.filter((n): n is string => n !== null);
  }

  /**
   * Places `name` and pins its slot (the caller unpins when done): its own slot when resident, else a
   * free slot, else the least recently used unpinned one. Null when every slot is pinned by others.
   */
  place(name: string): Placement | null {
    const own = this.byName.get(name);
    if (own !== undefined) {
      this.pin(own);
      return { slot: own, load: false };
    }
    let pick = this.names.indexOf(null);
    if (pick < 0) {
      for (let s = 0; s < this.capacity; s++) {
        if (this.pins[s]! > 0) continue;
        if (pick < 0 || this.lastUse[s]! < this.lastUse[pick]!) pick = s;
      }
    }
    if (pick < 0) return null;
    const evicted = this.names[pick];
    if (evicted !== null && evicted !== undefined) this.byName.delete(evicted);
    this.names[pick] = name;
    this.byName.set(name, pick);
    this.pin(pick);
    return { slot: pick, load: true, ...(evicted ? { evicted } : {}) };
  }

  pin(slot: number): void {
    this.pins[slot]!++;
    this.lastUse[slot] = ++this.clock;
  }

  unpin(slot: number): void {
    if (this.pins[slot]! <= 0) throw new Error(`assertion: LoRA slot ${slot} unpinned more often than pinned`);
    this.pins[slot]!--;
  }

  /** Forgets `name`'s residency (a failed load, or an unload with no pins left). Returns its slot. */
  clear(name: string): number | undefined {
    const slot = this.byName.get(name);
    if (slot === undefined) return undefined;
    this.byName.delete(name);
    this.names[slot] = null;
    return slot;
  }
}
