/**
 * End of a batch: lays the new nodes out in blocks, obtains block addresses from the store,
 * serializes every node with its children's final addresses, and writes all blocks in one call.
 *
 * Layout: nodes never cross a block boundary. The new nodes (and the pieces of prefixes too long
 * to store inline) are placed best-fit-decreasing: largest first, each into the block whose free
 * space fits it most tightly, so the many small sub-trie roots fill the gaps left by big B+-tree
 * nodes instead of each taking a block. Because every size is known before any address is, the
 * whole layout is computed first; then one `allocateBlocks(count)` gives the block addresses, and
 * serialization can visit nodes in any order.
 */

import type { Core } from './core.js';
import { BNode, encodeNode, encodePiece, Mem, nodeSize, PIECE_HEADER_SIZE, readPtr } from './node.js';
import type { BlockWrite } from './store.js';

interface Item {
  size: number;
  node: BNode | null;
  /** For a prefix piece: the root node it belongs to and its byte range of the prefix. */
  owner: BNode | null;
  start: number;
  end: number;
  next: Item | null;
  bin: number;
  off: number;
  addr: number;
}

export interface WriteSummary {
  nodes: number;
  bytes: number;
  blocks: number[];
}

const BUCKET = 16;

export function writeBatch(core: Core, newNodes: BNode[], root: BNode): WriteSummary {
  const C = core.C;
  const bs = core.blockSize;
  const inlineMax = core.inlineMax;

  // 1. New nodes reachable from the new root (others were superseded during the batch).
  const items: Item[] = [];
  const itemOf = new Array<Item | undefined>(newNodes.length);
  const firstPiece = new Map<BNode, Item>();
  if (root.addr < 0) {
    const stack: BNode[] = [root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      const it: Item = { size: nodeSize(node, C, inlineMax), node, owner: null, start: 0, end: 0, next: null, bin: -1, off: 0, addr: -1 };
      items.push(it);
      itemOf[-node.addr - 1] = it;
      if (node.isRoot && node.prefix.length > inlineMax) {
        // External prefix: a chain of pieces, each filling at most a block.
        const per = bs - PIECE_HEADER_SIZE;
        let prev: Item | null = null;
        for (let s = 0; s < node.prefix.length; s += per) {
          const e = Math.min(node.prefix.length, s + per);
          const p: Item = { size: PIECE_HEADER_SIZE + e - s, node: null, owner: node, start: s, end: e, next: null, bin: -1, off: 0, addr: -1 };
          items.push(p);
          if (prev === null) firstPiece.set(node, p);
          else prev.next = p;
          prev = p;
        }
      }
      // Children built by this batch (temporary ids); written children need nothing.
      if (node.temp) {
        const dv = node.dv;
        for (let i = 0, o = node.po; i < node.n; i++, o += 8) {
          const p = readPtr(dv, o);
          if (p < 0) stack.push(newNodes[-p - 1]!);
        }
      }
    }
  }

  // 2. Best-fit decreasing into blocks.
  const order = bySizeDescending(items, bs);
  const nb = Math.floor(bs / BUCKET) + 1;
  const buckets: (number[] | undefined)[] = new Array(nb);
  const binFree: number[] = [];
  for (const it of order) {
    let bin = -1;
    for (let b = Math.ceil(it.size / BUCKET); b < nb; b++) {
      const list = buckets[b];
      if (list !== undefined && list.length > 0) {
        bin = list.pop()!;
        break;
      }
    }
    if (bin < 0) {
      bin = binFree.length;
      binFree.push(bs);
    }
    it.bin = bin;
    it.off = bs - binFree[bin]!;
    const free = binFree[bin]! - it.size;
    binFree[bin] = free;
    if (free >= 32) (buckets[Math.floor(free / BUCKET)] ??= []).push(bin);
  }

  // 3. Addresses.
  const blockAddrs = binFree.length > 0 ? core.store.allocateBlocks(binFree.length) : [];
  if (blockAddrs.length !== binFree.length) throw new Error(`hbtrie: store returned ${blockAddrs.length} blocks for ${binFree.length}`);
  for (const it of items) it.addr = blockAddrs[it.bin]! + it.off;
  const resolve = (p: number): number => itemOf[-p - 1]!.addr;

  // 4. Serialize, into the node cache's memory: the nodes stay cached as they are written (a
  // node is its bytes; see node.ts and cache.ts). The blocks are allocated as one run, so that
  // none of them is reclaimed before its nodes are cached.
  const cache = core.cache;
  const nbins = binFree.length;
  const mems: Mem[] = new Array(nbins);
  const bases: number[] = new Array(nbins);
  const slabs: number[] = new Array(nbins);
  cache.beginRun();
  try {
    for (let b = 0; b < nbins; b++) {
      bases[b] = cache.alloc(bs);
      mems[b] = cache.mem;
      slabs[b] = cache.slab;
    }
  } finally {
    cache.endRun();
  }
  let bytes = 0;
  const hasPieces = firstPiece.size > 0;
  for (const it of items) {
    const base = bases[it.bin]! + it.off;
    if (it.node !== null) {
      const fp = hasPieces ? firstPiece.get(it.node) : undefined;
      encodeNode(it.node, C, inlineMax, mems[it.bin]!, base, resolve, fp === undefined ? -1 : fp.addr, core.checksum);
      it.node.slab = slabs[it.bin]!;
    } else {
      encodePiece(mems[it.bin]!.u8, base, C, it.owner!.prefix, it.start, it.end, it.next === null ? -1 : it.next.addr, core.checksum);
    }
    bytes += it.size;
  }
  // Nodes fill each block from its start; the rest of the block is zero (the memory is reused).
  for (let b = 0; b < nbins; b++) {
    const end = bases[b]! + bs;
    mems[b]!.u8.fill(0, end - binFree[b]!, end);
  }

  // 5. Write, in address order (the store's order, unless it returned blocks out of order).
  const writes: BlockWrite[] = new Array(nbins);
  let ascending = true;
  for (let b = 0; b < nbins; b++) {
    writes[b] = { addr: blockAddrs[b]!, data: mems[b]!.u8.subarray(bases[b]!, bases[b]! + bs) };
    if (b > 0 && blockAddrs[b]! < blockAddrs[b - 1]!) ascending = false;
  }
  if (!ascending) writes.sort((x, y) => x.addr - y.addr);
  if (writes.length > 0) core.store.writeBlocks(writes);

  // 6. The new nodes become ordinary written nodes (their entries already point into their
  // blocks, with final pointers): final addresses, cached in memory order (see cache.ts): by
  // block, and within a block by offset, which is the order they were placed in.
  for (const it of byBin(order, nbins)) {
    const node = it.node;
    if (node === null) continue;
    node.addr = it.addr;
    node.size = it.size;
    const fp = hasPieces ? firstPiece.get(node) : undefined;
    if (fp !== undefined) {
      const pieces: number[] = [];
      for (let p: Item | null = fp; p !== null; p = p.next) pieces.push(p.addr, p.size);
      node.pieces = pieces;
    }
    cache.set(node.addr, node);
  }
  return { nodes: items.length, bytes, blocks: writes.map((w) => w.addr) };
}

/**
 * The items by size, largest first, ties in their order in `items` (what a stable sort by size
 * gives, without a comparator call per pair): a counting sort over sizes 0..maxSize.
 */
function bySizeDescending(items: Item[], maxSize: number): Item[] {
  const at = new Int32Array(maxSize + 2);
  for (const it of items) at[maxSize - it.size + 1]!++;
  for (let k = 1; k <= maxSize + 1; k++) at[k]! += at[k - 1]!;
  const out: Item[] = new Array(items.length);
  for (const it of items) out[at[maxSize - it.size]!++] = it;
  return out;
}

/** The items grouped by bin, in their order in `items` within a bin (a stable counting sort). */
function byBin(items: Item[], nbins: number): Item[] {
  const at = new Int32Array(nbins + 1);
  for (const it of items) at[it.bin + 1]!++;
  for (let k = 1; k <= nbins; k++) at[k]! += at[k - 1]!;
  const out: Item[] = new Array(items.length);
  for (const it of items) out[at[it.bin]!++] = it;
  return out;
}
