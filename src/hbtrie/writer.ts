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
import { BNode, encodeNode, encodePiece, nodeSize, PIECE_HEADER_SIZE } from './node.js';

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
const GROUP = 16;

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
      const ptrs = node.ptrs;
      for (let i = 0; i < node.n; i++) {
        const p = ptrs[i]!;
        if (p < 0) stack.push(newNodes[-p - 1]!);
      }
    }
  }

  // 2. Best-fit decreasing into blocks.
  const order = items.slice().sort((a, b) => b.size - a.size);
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

  // 4. Serialize.
  // Blocks are carved out of shared allocations of up to GROUP blocks (fewer, larger backing
  // stores are much cheaper for V8's garbage collector than thousands of 4 KiB ones).
  const bufs: Uint8Array[] = [];
  for (let b = 0; b < binFree.length; b += GROUP) {
    const cnt = Math.min(GROUP, binFree.length - b);
    const ab = new ArrayBuffer(cnt * bs);
    for (let k = 0; k < cnt; k++) bufs.push(new Uint8Array(ab, k * bs, bs));
  }
  let bytes = 0;
  for (const it of items) {
    const buf = bufs[it.bin]!;
    if (it.node !== null) {
      const fp = firstPiece.get(it.node);
      encodeNode(it.node, C, inlineMax, buf, it.off, resolve, fp === undefined ? -1 : fp.addr);
    } else {
      encodePiece(buf, it.off, C, it.owner!.prefix, it.start, it.end, it.next === null ? -1 : it.next.addr);
    }
    bytes += it.size;
  }

  // 5. Write, in address order.
  const writes = blockAddrs.map((addr, b) => ({ addr, data: bufs[b]! })).sort((x, y) => x.addr - y.addr);
  if (writes.length > 0) core.store.writeBlocks(writes);

  // 6. The new nodes become ordinary decoded nodes: final addresses, cached.
  for (const it of items) {
    const node = it.node;
    if (node === null) continue;
    const ptrs = node.ptrs;
    for (let i = 0; i < node.n; i++) {
      const p = ptrs[i]!;
      if (p < 0) ptrs[i] = resolve(p);
    }
    node.words = null; // the search array embeds pointers: rebuild it from the final ones
  }
  for (const it of items) {
    const node = it.node;
    if (node === null) continue;
    node.addr = it.addr;
    node.size = it.size;
    const fp = firstPiece.get(node);
    if (fp !== undefined) {
      const pieces: number[] = [];
      for (let p: Item | null = fp; p !== null; p = p.next) pieces.push(p.addr, p.size);
      node.pieces = pieces;
    }
    core.cache.set(node.addr, node);
  }
  return { nodes: items.length, bytes, blocks: writes.map((w) => w.addr) };
}
