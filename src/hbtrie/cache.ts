/**
 * The node cache: written nodes by address, and the memory they live in.
 *
 * A node is its serialized bytes (see node.ts), so the cache holds bytes, bounded by a byte
 * budget. The memory is a ring of slabs allocated once and reused: nodes read from the store are
 * copied to the ring's head, and a batch writes its new blocks straight into it. When the head
 * needs room the next slab is reclaimed: nodes used since that slab was last reclaimed (the hot
 * bit: a second chance, as in CLOCK) are compacted to its start, the others are evicted. So a
 * batch allocates no memory for the nodes it writes: nothing adds to the garbage collector's
 * external memory, and no fresh pages are touched.
 *
 * Lookups walk the ring by location (see trie.ts find): a node's children are found where an
 * earlier lookup found them (the slab's side entries), valid while the child's slab has not been
 * reclaimed since (its epoch).
 *
 * Reclaiming moves or evicts nodes that code may still hold. A moved node is the same object with
 * updated fields, so a holder that reads through the node's fields stays correct. An evicted node
 * is marked dead (its memory fields point at an empty buffer, so a stray read throws rather than
 * returning another node's bytes); a holder that keeps nodes across loads (a Cursor) checks
 * `dead` and reloads by address. While a batch applies its operations it keeps nodes and views of
 * their memory on its stack, so it pins the cache: nothing is reclaimed, and nodes read
 * meanwhile go to memory outside the ring (left to the garbage collector once they leave the
 * cache, in FIFO order, beyond a quarter of the budget).
 *
 * Nodes are immutable, so a cached node can never be stale for its address.
 */

import { allocOutside, type BNode, HOT_MARK, KIDS_MARK, Mem, outside, SIDE_REF, wr32 } from './node.js';
import { sampleCount, writeSamples } from './samples.js';

export class NodeCache {
  private readonly map = new Map<number, BNode>();
  /** Byte budget of the ring. */
  readonly capacity: number;
  readonly slabSize: number;
  private readonly slabCount: number;
  /** The ring's memory (read directly by lookups; see trie.ts find). */
  readonly slabs: Mem[] = [];
  /**
   * Per slab, a count bumped each time the slab is reclaimed (its nodes move or die), starting
   * at 1: a remembered location (slab, offset) is valid while its slab's epoch is unchanged.
   */
  readonly epochs: Int32Array;
  /**
   * Per slab, the side regions of its nodes that lookups went through, reserved on first use
   * (region) and referred to from the node's bytes (see SIDE_REF): the node's search samples
   * (see samples.ts; none for a small node), then, if the node's KIDS_MARK is set, where its
   * children were found, two words per child pointer: the child's location ((slab << 20) |
   * offset), and that slab's epoch when recorded (0: nothing recorded). Emptied when the slab
   * is reclaimed.
   */
  readonly side: Int32Array[] = [];
  private readonly sideUsed: Int32Array;
  /** The nodes in each slab, in the order they were placed there. */
  private readonly lists: BNode[][] = [];
  /** Slab being filled (-1: none yet), and its first free byte. */
  private head = -1;
  private off = 0;
  /** Nodes cached outside the ring: FIFO. */
  private outside: BNode[] = [];
  private outsideAt = 0;
  private outsideBytes = 0;
  private pins = 0;
  /** During an allocation run: the slab it must not come back to (see beginRun); -2 = no run. */
  private guard = -2;
  misses = 0;
  /** Memory, and slab (-1: outside the ring), of the last alloc. */
  mem!: Mem;
  slab = -1;

  /**
   * @param capacity byte budget (rounded to whole slabs, at least 4)
   * @param blockSize the largest node (a slab holds at least one block)
   */
  constructor(capacity: number, blockSize: number) {
    let slab = Math.min(1 << 20, Math.max(blockSize, Math.floor(capacity / 16)));
    slab -= slab % blockSize;
    this.slabSize = slab;
    this.slabCount = Math.max(4, Math.min(2048, Math.floor(capacity / slab)));
    this.capacity = this.slabCount * slab;
    this.epochs = new Int32Array(this.slabCount).fill(1);
    this.sideUsed = new Int32Array(this.slabCount);
  }

  /**
   * Reserves `words` zeroed words in slab i's side table and returns the index of the first
   * (`side[i]` may be a new array afterwards).
   */
  sideAlloc(i: number, words: number): number {
    const at = this.sideUsed[i]!;
    let t = this.side[i]!;
    if (at + words > t.length) {
      const bigger = new Int32Array(Math.max(2 * t.length, at + words, 256));
      bigger.set(t.subarray(0, at));
      this.side[i] = t = bigger;
    }
    t.fill(0, at, at + words);
    this.sideUsed[i] = at + words;
    return at;
  }

  /**
   * Reserves the side region of the node at offset b of slab s (chunks at ko, n entries of C
   * bytes): its samples, and with `kids` zeroed child locations. Records it in the node's bytes
   * and returns the reference (1 + index of the region's first word in side[s]).
   */
  region(s: number, b: number, ko: number, n: number, C: number, kids: boolean): number {
    const at = this.sideAlloc(s, sampleCount(n) + (kids ? 2 * n : 0));
    const mem = this.slabs[s]!;
    writeSamples(this.side[s]!, at, mem.dv, ko, n, C);
    mem.dv.setUint32(b + SIDE_REF, at + 1, true);
    mem.u8[b + KIDS_MARK] = kids ? 1 : 0;
    return at + 1;
  }

  /** Slab i's nodes move or die: locations in it, and its side entries, are no longer valid. */
  private invalidate(i: number): void {
    this.epochs[i] = (this.epochs[i]! + 1) | 0 || 1;
    this.sideUsed[i] = 0;
  }

  get(addr: number): BNode | undefined {
    const node = this.map.get(addr);
    if (node !== undefined) {
      node.hot = true;
      if (node.slab < 0 && this.pins === 0) this.adopt(node);
    }
    return node;
  }

  /**
   * Moves a node cached outside the ring (read while a batch pinned the cache) into it, where
   * lookups can find its children by location and the budget accounts for it.
   */
  private adopt(node: BNode): void {
    const size = node.size;
    const o = this.alloc(size);
    if (this.slab < 0) return;
    const u8 = this.mem.u8;
    u8.set(node.u8.subarray(node.base, node.base + size), o);
    clearSide(u8, o);
    node.moveTo(this.mem, o);
    node.slab = this.slab;
    this.lists[this.slab]!.push(node);
    this.outsideBytes -= size;
  }

  /** Number of cached nodes. */
  get size(): number {
    return this.map.size;
  }

  /**
   * Caches `node`, whose memory came from the last alloc (node.slab says where). Cached nodes
   * start cold: a node is kept past the next reclaim of its slab only if it is used meanwhile.
   */
  set(addr: number, node: BNode): void {
    this.map.set(addr, node);
    node.hot = false;
    if (node.slab >= 0) {
      // The copy in the ring is ours now (the store has its own): its checksum field becomes
      // the reference to its side entries.
      clearSide(node.u8, node.base);
      this.lists[node.slab]!.push(node);
    } else {
      this.outside.push(node);
      this.outsideBytes += node.size;
      this.trimOutside();
    }
  }

  /** Drops every cached node (holders see them dead and reload them). */
  clear(): void {
    for (const node of this.map.values()) if (node.slab >= 0) node.kill();
    this.map.clear();
    for (const l of this.lists) l.length = 0;
    this.outside = [];
    this.outsideAt = 0;
    this.outsideBytes = 0;
    this.head = -1;
    this.off = 0;
    for (let i = 0; i < this.slabs.length; i++) this.invalidate(i);
  }

  /** No reclaiming until the matching unpin (a batch is applying its operations). */
  pin(): void {
    this.pins++;
  }

  unpin(): void {
    this.pins--;
  }

  /**
   * Starts an allocation run: memory allocated until endRun must all stay valid, though it is
   * cached only at the end (the blocks of one batch, handed to the store first). The ring may not
   * come back round to the slab the run started in; beyond that, memory comes from outside.
   */
  beginRun(): void {
    this.guard = this.head;
  }

  endRun(): void {
    this.guard = -2;
  }

  /** Reserves `bytes` (at most a slab); sets `mem` and `slab` and returns the offset in `mem`. */
  alloc(bytes: number): number {
    if (this.head < 0 || this.off + bytes > this.slabSize) {
      if (this.pins > 0 || !this.advance(bytes)) {
        this.slab = -1;
        const o = allocOutside(bytes);
        this.mem = outside.mem;
        return o;
      }
    }
    const o = this.off;
    this.off += bytes;
    this.mem = this.slabs[this.head]!;
    this.slab = this.head;
    return o;
  }

  /** Reclaims slabs until the head has room for `bytes`; false if it may not. */
  private advance(bytes: number): boolean {
    // A second round finds every hot bit cleared, so this ends.
    for (let tries = 0; tries <= 2 * this.slabCount; tries++) {
      const next = this.head + 1 === this.slabCount ? 0 : this.head + 1;
      if (next === this.guard) return false;
      if (this.guard === -1) this.guard = next; // a run that began before the first slab
      this.reclaim(next);
      if (this.off + bytes <= this.slabSize) return true;
    }
    return false;
  }

  /** Makes slab i the head: evicts its cold nodes and compacts its hot ones to its start. */
  private reclaim(i: number): void {
    if (i === this.slabs.length) {
      this.slabs.push(new Mem(new ArrayBuffer(this.slabSize)));
      this.lists.push([]);
      this.side.push(new Int32Array(0));
    }
    this.invalidate(i);
    const mem = this.slabs[i]!;
    const list = this.lists[i]!;
    // Compacting in place needs the nodes in address order (a batch caches its blocks' nodes in
    // the order it wrote them, which usually is, but need not be).
    for (let j = 1; j < list.length; j++) {
      if (list[j]!.base < list[j - 1]!.base) {
        list.sort((a, b) => a.base - b.base);
        break;
      }
    }
    let o = 0;
    let k = 0;
    for (let j = 0; j < list.length; j++) {
      const node = list[j]!;
      if (node.slab !== i || node.dead) continue;
      // Used since the last reclaim: through the cache (hot), or by a lookup that went by
      // location and marked the node's bytes (see HOT_MARK).
      if (!node.hot && mem.u8[node.base + HOT_MARK] === 0) {
        if (this.map.get(node.addr) === node) this.map.delete(node.addr);
        node.kill();
        continue;
      }
      node.hot = false;
      mem.u8[node.base + HOT_MARK] = 0;
      clearSide(mem.u8, node.base); // its side region went with the slab's
      if (node.base !== o) {
        mem.u8.copyWithin(o, node.base, node.base + node.size);
        node.moveTo(mem, o);
      }
      o += node.size;
      list[k++] = node;
    }
    list.length = k;
    this.head = i;
    this.off = o;
  }

  /** Evicts the oldest nodes outside the ring while they take more than a quarter of the budget. */
  private trimOutside(): void {
    const max = this.capacity >> 2;
    const q = this.outside;
    while (this.outsideBytes > max && this.outsideAt < q.length) {
      const node = q[this.outsideAt++]!;
      if (node.slab >= 0 || node.dead) continue; // adopted into the ring since
      this.outsideBytes -= node.size;
      // Not killed: its memory is never reused, so a holder may go on reading it.
      if (this.map.get(node.addr) === node) this.map.delete(node.addr);
    }
    if (this.outsideAt > 1024 && this.outsideAt * 2 > q.length) {
      this.outside = q.slice(this.outsideAt);
      this.outsideAt = 0;
    }
  }
}

/** The node at u8[b] has no side region (see NodeCache.side). */
function clearSide(u8: Uint8Array, b: number): void {
  wr32(u8, b + SIDE_REF, 0);
  u8[b + KIDS_MARK] = 0;
}
