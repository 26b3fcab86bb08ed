/**
 * Decoded-node cache keyed by node address, bounded by a node count. Eviction is CLOCK (second
 * chance): a hit only sets a bit on the node, so a hit costs one Map lookup; the clock hand
 * sweeps a ring of slots, clearing bits, and evicts the first node whose bit is clear.
 * Nodes are immutable, so a cached node can never be stale for its address.
 */

import type { BNode } from './node.js';

export class NodeCache {
  private readonly map = new Map<number, BNode>();
  private readonly ring: (BNode | undefined)[] = [];
  private readonly ringAddr: number[] = [];
  private hand = 0;
  readonly capacity: number;
  misses = 0;

  constructor(capacity: number) {
    this.capacity = Math.max(16, capacity | 0);
  }

  get(addr: number): BNode | undefined {
    const node = this.map.get(addr);
    if (node !== undefined) node.hot = true;
    return node;
  }

  set(addr: number, node: BNode): void {
    if (this.map.has(addr)) {
      this.map.set(addr, node);
      return;
    }
    let slot: number;
    if (this.ring.length < this.capacity) {
      slot = this.ring.length;
      this.ring.push(node);
      this.ringAddr.push(addr);
    } else {
      slot = this.evict();
      this.ring[slot] = node;
      this.ringAddr[slot] = addr;
    }
    node.hot = false;
    this.map.set(addr, node);
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
    this.ring.length = 0;
    this.ringAddr.length = 0;
    this.hand = 0;
  }

  /** Frees a slot and returns it. */
  private evict(): number {
    const ring = this.ring;
    const n = ring.length;
    for (;;) {
      const h = this.hand;
      this.hand = h + 1 === n ? 0 : h + 1;
      const node = ring[h]!;
      if (node.hot) {
        node.hot = false;
      } else {
        this.map.delete(this.ringAddr[h]!);
        return h;
      }
    }
  }
}
