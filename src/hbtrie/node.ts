/**
 * Node format and (de)serialization. The byte-level layout is documented in
 * docs/FORMAT-hbtrie.md; keep the two in step.
 *
 * Every node is a variable-size record placed inside one block (it never crosses a block
 * boundary) and addressed by the byte offset of its first byte. All integers are little-endian.
 *
 *   common header (16 bytes)
 *     0  u32  CRC32C of bytes [4, len)
 *     4  u8   magic 0xB7
 *     5  u8   type: 1 = B+-tree leaf, 2 = B+-tree internal, 3 = prefix piece
 *     6  u16  n: entries (leaf/internal) or data bytes (prefix piece)
 *     8  u32  len: total length of the node in bytes, header included
 *    12  u8   chunk size C
 *    13  u8   flags: bit 0 = trie-node root (a trie header follows), bit 1 = prefix stored in pieces
 *    14  u16  reserved, 0
 *   trie header (only when flags bit 0)
 *    16  u32  level: index of the key chunk this trie node's B+-tree is keyed by
 *    20  u32  prefixLen: number of skipped chunks (the chunks [level - prefixLen, level))
 *    24  ...  prefix: prefixLen * C bytes inline, or (flags bit 1) u64 address of the first piece
 *   entries (leaf/internal)
 *         n * C bytes: the chunks, ascending
 *         n * u64: pointers. Bits 0..52 = value / address. Bit 63 (leaf only) = 1: pointer to the
 *         root node of a sub-trie; 0: a value (record address). Bits 53..62 are 0.
 *   prefix piece (type 3)
 *    16  u64  address of the next piece, or 2^64 - 1 for none
 *    24  n bytes of prefix data
 *
 * In memory a node *is* its entries in this byte form: a BNode points at the chunk array and the
 * pointer array inside some buffer (for a written node: its bytes in the node cache's memory, as
 * the writer produced them or as read from the store; for a node built during a batch: the
 * batch's scratch memory). Searches read the chunks in place as big-endian words through a
 * DataView, a batch copies runs of entries with memcpy, and the writer copies entries into the
 * block unchanged. So nothing is decoded into separate arrays: a changed node costs copies of its
 * bytes and a checksum, not a decode, an encode and a search array.
 */

import type { NodeCache } from './cache.js';
import { type Checksum, crc32c } from './crc32c.js';
import { corrupt } from './errors.js';

export const NODE_MAGIC = 0xb7;
export const TYPE_LEAF = 1;
export const TYPE_INTERNAL = 2;
export const TYPE_PIECE = 3;
export const FLAG_ROOT = 1;
export const FLAG_EXTERNAL_PREFIX = 2;
export const HEADER_SIZE = 16;
export const TRIE_HEADER_SIZE = 8;
export const PTR_SIZE = 8;
export const PIECE_HEADER_SIZE = 24;

/** Leaf entry kinds. */
export const KIND_VALUE = 0;
export const KIND_TRIE = 1;

const TWO32 = 0x1_0000_0000;
const EMPTY = new Uint8Array(0);
/** High pointer word: bit 63 = sub-trie. */
const HI_TRIE = 0x80000000 | 0;
/**
 * High pointer word: bit 62 = a temporary id of a node built by the running batch (low word =
 * its index). Only ever in batch scratch memory: bits 53..62 are 0 on disk, and the writer
 * replaces every temporary id with the final address.
 */
const HI_TEMP = 0x40000000;
/** Bits 53..62 of a stored pointer: must be 0. */
const HI_RESERVED = 0x7fe00000;

/** A byte buffer with its DataView (one pair per memory region, shared by the nodes in it). */
export class Mem {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  constructor(ab: ArrayBuffer) {
    this.u8 = new Uint8Array(ab);
    this.dv = new DataView(ab);
  }
}

/**
 * In the cache's copy of a node (never in the store's), header byte 14 (reserved, 0 on disk) is
 * set by lookups that reach the node by location rather than through its object: the cache's
 * second-chance bit for them (see cache.ts). The copy is never checksummed again.
 */
export const HOT_MARK = 14;

/**
 * In the cache's copy of a node in the ring, the checksum field (bytes 0..3, verified when the
 * node was read or written, and not needed again) holds 1 + the index of the node's first entry
 * in its slab's side table, or 0 (see cache.ts).
 */
export const SIDE_REF = 0;

/**
 * In the cache's copy of a node in the ring, header byte 15 (reserved, 0 on disk) says whether
 * the node's side region (see SIDE_REF) holds child locations after its search samples (1) or
 * only samples (0).
 */
export const KIDS_MARK = 15;

/** The memory of evicted nodes: empty, so a read through a dead node throws. */
const DEAD = new Mem(new ArrayBuffer(0));

/**
 * A B+-tree node: its header fields, and where its entries are. Written nodes are immutable and
 * shared through the node cache. A node built during a batch has a negative `addr` (a temporary
 * id) until the batch is written.
 */
export class BNode {
  // The fields a lookup reads come first (they share the object's first cache lines).
  /** Byte address once written; negative temporary id while new. */
  addr: number;
  leaf: boolean;
  n: number;
  level = 0;
  prefixLen = 0;
  /**
   * The skipped prefix as pu8[poff, poff + prefixLen * C): for an inline prefix, the node's own
   * bytes (so a lookup reads the memory it is about to search, not another object).
   */
  pu8: Uint8Array = EMPTY;
  poff = 0;
  /** The memory holding the entries: chunks at u8[ko, ko + n * C), pointers at u8[po, po + 8n). */
  dv: DataView;
  u8: Uint8Array;
  ko: number;
  po: number;
  /**
   * Children already looked up through this node (lookups follow these instead of asking the
   * cache; an entry is dropped when its node is dead). Only nodes in the cache's ring are kept.
   */
  kids: (BNode | undefined)[] | null = null;
  /** Evicted from the cache and its memory reused: reload it by address (see cache.ts). */
  dead = false;
  /** Second-chance bit for the node cache. */
  hot = false;
  /** Serialized size in bytes (known for written nodes; computed at write for new nodes). */
  size = 0;
  /** Root of a trie node: has a trie header. */
  isRoot = false;
  /** prefixLen * C bytes (the skipped chunks); EMPTY when prefixLen is 0. */
  prefix: Uint8Array = EMPTY;
  /** External prefix pieces of a written node: [addr0, size0, addr1, size1, ...]. */
  pieces: number[] | null = null;
  /**
   * The entries may hold temporary ids (a node of the running batch whose children include new
   * nodes); false lets the writer skip scanning the pointers of, e.g., a leaf of values.
   */
  temp = false;
  /** Written node: offset of its first byte in `u8`, and the cache slab holding it (-1: none). */
  base = 0;
  slab = -1;

  constructor(addr: number, leaf: boolean, n: number, u8: Uint8Array, dv: DataView, ko: number, po: number) {
    this.addr = addr;
    this.leaf = leaf;
    this.n = n;
    this.u8 = u8;
    this.dv = dv;
    this.ko = ko;
    this.po = po;
  }

  setHeader(level: number, prefixLen: number, prefix: Uint8Array): void {
    this.isRoot = true;
    this.level = level;
    this.prefixLen = prefixLen;
    this.setPrefix(prefixLen === 0 ? EMPTY : prefix, prefix, 0);
  }

  /** Sets the prefix (`view`), also found at buf[off, off + view.length). */
  setPrefix(view: Uint8Array, buf: Uint8Array, off: number): void {
    this.prefix = view;
    this.pu8 = view.length === 0 ? EMPTY : buf;
    this.poff = view.length === 0 ? 0 : off;
  }

  /** The written node's bytes now start at mem[base] (the cache compacted or moved it). */
  moveTo(mem: Mem, base: number): void {
    const d = base - this.base;
    this.u8 = mem.u8;
    this.dv = mem.dv;
    this.base = base;
    this.ko += d;
    this.po += d;
    if (this.isRoot && this.pieces === null && this.prefix.length > 0) {
      const p = base + HEADER_SIZE + TRIE_HEADER_SIZE;
      this.setPrefix(mem.u8.subarray(p, p + this.prefix.length), mem.u8, p);
    }
  }

  /** Evicted: the memory is about to be reused. */
  kill(): void {
    this.dead = true;
    this.u8 = DEAD.u8;
    this.dv = DEAD.dv;
    this.slab = -1;
    this.kids = null;
    if (this.pieces === null) this.setPrefix(EMPTY, EMPTY, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Entry access

/** Pointer of entry i: a value or node address, or -(id + 1) for a node of the running batch. */
export function ptrAt(node: BNode, i: number): number {
  return readPtr(node.dv, node.po + 8 * i);
}

/** The pointer stored at byte offset o (see ptrAt). */
export function readPtr(dv: DataView, o: number): number {
  const hi = dv.getInt32(o + 4, true);
  const lo = dv.getUint32(o, true);
  if ((hi & HI_TEMP) !== 0) return -lo - 1;
  return (hi & 0x1fffff) * TWO32 + lo;
}

/** True if leaf entry i points to a sub-trie. */
export function isTrieAt(node: BNode, i: number): boolean {
  return node.dv.getInt32(node.po + 8 * i + 4, true) < 0;
}

/** Writes pointer `v` (a value or address, or a negative temporary id) at byte offset o. */
export function setPtr(dv: DataView, o: number, v: number, trie: boolean): void {
  if (v < 0) {
    dv.setUint32(o, -v - 1, true);
    dv.setInt32(o + 4, HI_TEMP | (trie ? HI_TRIE : 0), true);
  } else {
    const lo = v >>> 0;
    dv.setUint32(o, lo, true);
    dv.setInt32(o + 4, ((v - lo) / TWO32) | (trie ? HI_TRIE : 0), true);
  }
}

// ---------------------------------------------------------------------------------------------
// Memory

/**
 * Memory outside the cache's ring (nodes read while a batch pins the cache, blocks of a batch
 * too large for the ring) comes from 64 KiB arenas: V8 makes every ArrayBuffer an external
 * allocation that costs microseconds to create and pressures the garbage collector. An arena is
 * freed when no node carved from it is referenced any more.
 */
const ARENA = 65536;
let arenaOff = 0;

/** Memory of the last allocOutside. */
export const outside = { mem: new Mem(new ArrayBuffer(ARENA)) };
let arena = outside.mem;

/**
 * Reserves `bytes` of memory outside the cache's ring (collected by the garbage collector once
 * no node refers to it); sets `outside.mem` and returns the offset in it.
 */
export function allocOutside(bytes: number): number {
  if (bytes > ARENA >> 2) {
    outside.mem = new Mem(new ArrayBuffer(bytes));
    return 0;
  }
  if (arenaOff + bytes > ARENA) {
    arena = new Mem(new ArrayBuffer(ARENA));
    arenaOff = 0;
  }
  outside.mem = arena;
  const off = arenaOff;
  arenaOff += (bytes + 7) & ~7;
  return off;
}

/**
 * Scratch memory of one batch: the entry lists it builds and the nodes cut from them. Chunks are
 * kept and reused by the next batch (the writer copies every node it keeps into its block, so
 * nothing refers to scratch memory once a batch is done), so a batch allocates no memory for
 * nodes it builds and then discards.
 */
export class Scratch {
  private readonly chunks: Mem[] = [];
  private ci = -1;
  private off = 0;
  /** Memory of the last alloc. */
  mem!: Mem;
  private static readonly CHUNK = 1 << 20;

  /** Starts over (everything allocated before is free). */
  reset(): void {
    this.ci = -1;
    this.off = Scratch.CHUNK;
    // Keep at most 16 MiB between batches.
    if (this.chunks.length > 16) this.chunks.length = 16;
  }

  /** Reserves `bytes`; sets `mem` and returns the offset in it. Contents are arbitrary. */
  alloc(bytes: number): number {
    const CH = Scratch.CHUNK;
    if (bytes > CH >> 2) {
      this.mem = new Mem(new ArrayBuffer(bytes));
      return 0;
    }
    if (this.ci < 0 || this.off + bytes > CH) {
      this.ci++;
      if (this.ci === this.chunks.length) this.chunks.push(new Mem(new ArrayBuffer(CH)));
      this.off = 0;
    }
    this.mem = this.chunks[this.ci]!;
    const o = this.off;
    this.off += bytes;
    return o;
  }
}

// ---------------------------------------------------------------------------------------------
// Serialization

/** Size in bytes of the prefix field of a trie header. */
export function prefixFieldSize(prefixBytes: number, inlineMax: number): number {
  return prefixBytes <= inlineMax ? prefixBytes : 8;
}

/** Serialized size of a node. */
export function nodeSize(node: BNode, C: number, inlineMax: number): number {
  let s = HEADER_SIZE + node.n * (C + PTR_SIZE);
  if (node.isRoot) s += TRIE_HEADER_SIZE + prefixFieldSize(node.prefix.length, inlineMax);
  return s;
}

export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

export function rd32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function wr64(b: Uint8Array, o: number, v: number): void {
  const lo = v >>> 0;
  const hi = (v - lo) / TWO32;
  wr32(b, o, lo);
  wr32(b, o + 4, hi);
}

/** Copies `len` bytes from src[so] to dst[dO] (a byte loop for short runs: cheaper than subarray + set). */
export function copyBytes(src: Uint8Array, so: number, dst: Uint8Array, dO: number, len: number): void {
  if (len <= 48) {
    for (let k = 0; k < len; k++) dst[dO + k] = src[so + k]!;
  } else if (src === dst) {
    dst.copyWithin(dO, so, so + len);
  } else {
    dst.set(src.subarray(so, so + len), dO);
  }
}

/**
 * Serializes `node` at mem[off, off + size) and returns the size. `resolve` maps a temporary id
 * (negative) to its final address. `prefixAddr` is the address of the first prefix piece when
 * the prefix is external. Afterwards the node's entries are the ones just written (`u8`, `dv`,
 * `ko`, `po` point into `mem`), so a node keeps no reference to the memory it was built in.
 */
export function encodeNode(
  node: BNode,
  C: number,
  inlineMax: number,
  mem: Mem,
  off: number,
  resolve: (p: number) => number,
  prefixAddr: number,
  checksum: Checksum = crc32c,
): number {
  const out = mem.u8;
  const dv = mem.dv;
  const n = node.n;
  const len = nodeSize(node, C, inlineMax);
  out[off + 4] = NODE_MAGIC;
  out[off + 5] = node.leaf ? TYPE_LEAF : TYPE_INTERNAL;
  out[off + 6] = n & 0xff;
  out[off + 7] = n >>> 8;
  wr32(out, off + 8, len);
  out[off + 12] = C;
  let flags = 0;
  let p = off + HEADER_SIZE;
  if (node.isRoot) {
    flags |= FLAG_ROOT;
    wr32(out, p, node.level);
    wr32(out, p + 4, node.prefixLen);
    p += TRIE_HEADER_SIZE;
    const pb = node.prefix.length;
    if (pb <= inlineMax) {
      copyBytes(node.prefix, 0, out, p, pb);
      // The node's prefix is now its own bytes (not a view of some older node's memory).
      node.setPrefix(pb === 0 ? EMPTY : out.subarray(p, p + pb), out, p);
      p += pb;
    } else {
      flags |= FLAG_EXTERNAL_PREFIX;
      wr64(out, p, prefixAddr);
      p += 8;
    }
  }
  out[off + 13] = flags;
  out[off + 14] = 0;
  out[off + 15] = 0;
  const kb = n * C;
  copyBytes(node.u8, node.ko, out, p, kb);
  const ko = p;
  p += kb;
  copyBytes(node.u8, node.po, out, p, n * PTR_SIZE);
  const po = p;
  // Temporary ids become final addresses.
  if (node.temp) {
    for (let i = 0; i < n; i++, p += 8) {
      const hi = dv.getInt32(p + 4, true);
      if ((hi & HI_TEMP) !== 0) setPtr(dv, p, resolve(-dv.getUint32(p, true) - 1), hi < 0);
    }
    node.temp = false;
  }
  wr32(out, off, checksum(out, off + 4, off + len));
  node.u8 = out;
  node.dv = dv;
  node.base = off;
  node.ko = ko;
  node.po = po;
  return len;
}

/** Serializes a prefix piece holding data[start, end) with a link to `next` (-1 for none). */
export function encodePiece(
  out: Uint8Array,
  off: number,
  C: number,
  data: Uint8Array,
  start: number,
  end: number,
  next: number,
  checksum: Checksum = crc32c,
): number {
  const n = end - start;
  const len = PIECE_HEADER_SIZE + n;
  out[off + 4] = NODE_MAGIC;
  out[off + 5] = TYPE_PIECE;
  out[off + 6] = n & 0xff;
  out[off + 7] = n >>> 8;
  wr32(out, off + 8, len);
  out[off + 12] = C;
  out[off + 13] = 0;
  out[off + 14] = 0;
  out[off + 15] = 0;
  if (next < 0) {
    wr32(out, off + 16, 0xffffffff);
    wr32(out, off + 20, 0xffffffff);
  } else {
    wr64(out, off + 16, next);
  }
  out.set(data.subarray(start, end), off + PIECE_HEADER_SIZE);
  wr32(out, off, checksum(out, off + 4, off + len));
  return len;
}

/** Checks the common header and checksum; returns the node length. */
export function verifyNode(buf: Uint8Array, addr: number, C: number, checksum: Checksum = crc32c): number {
  if (buf.length < HEADER_SIZE) throw corrupt(addr, `only ${buf.length} bytes are left in the block`);
  if (buf[4] !== NODE_MAGIC) throw corrupt(addr, `bad magic byte 0x${buf[4]!.toString(16)}`);
  const len = rd32(buf, 8);
  if (len < HEADER_SIZE || len > buf.length) throw corrupt(addr, `bad length ${len}`);
  const want = rd32(buf, 0);
  const got = checksum(buf, 4, len) >>> 0;
  if (want !== got) {
    throw corrupt(addr, `checksum mismatch (stored 0x${want.toString(16)}, computed 0x${got.toString(16)})`);
  }
  if (buf[12] !== C) throw corrupt(addr, `chunk size ${buf[12]} does not match the trie's ${C}`);
  return len;
}

function rd53(b: Uint8Array, o: number, addr: number): number {
  const hi = rd32(b, o + 4) & 0x7fffffff;
  if (hi > 0x1fffff) throw corrupt(addr, 'pointer out of range');
  return hi * TWO32 + rd32(b, o);
}

/**
 * Decodes a leaf or internal node from `buf` (a view starting at the node): verifies it and
 * copies its bytes (into memory from `cache`, else outside it), so the buffer may be reused
 * afterwards. An external prefix is not read here: `pieces` receives the first piece's address
 * as [addr] and the caller follows the chain.
 */
export function decodeNode(buf: Uint8Array, addr: number, C: number, cache?: NodeCache, checksum: Checksum = crc32c): BNode {
  const len = verifyNode(buf, addr, C, checksum);
  const type = buf[5];
  if (type !== TYPE_LEAF && type !== TYPE_INTERNAL) throw corrupt(addr, `unexpected node type ${type}`);
  const n = buf[6]! | (buf[7]! << 8);
  const flags = buf[13]!;
  let p = HEADER_SIZE;
  let level = 0;
  let prefixLen = 0;
  let prefixAt = -1;
  let firstPiece = -1;
  if (flags & FLAG_ROOT) {
    level = rd32(buf, p);
    prefixLen = rd32(buf, p + 4);
    p += TRIE_HEADER_SIZE;
    if (prefixLen > level) throw corrupt(addr, `prefix of ${prefixLen} chunks at level ${level}`);
    if (flags & FLAG_EXTERNAL_PREFIX) {
      firstPiece = rd53(buf, p, addr);
      p += 8;
    } else {
      const pb = prefixLen * C;
      if (p + pb > len) throw corrupt(addr, 'prefix runs past the end of the node');
      prefixAt = p;
      p += pb;
    }
  }
  if (p + n * (C + PTR_SIZE) !== len) throw corrupt(addr, `length ${len} does not match ${n} entries`);
  const leaf = type === TYPE_LEAF;
  for (let i = 0, q = p + n * C + 4; i < n; i++, q += 8) {
    const hi = rd32(buf, q);
    if ((hi & HI_RESERVED) !== 0) throw corrupt(addr, 'pointer out of range');
    if (hi >>> 31 !== 0 && !leaf) throw corrupt(addr, 'sub-trie flag in an internal node');
  }
  let at: number;
  let mem: Mem;
  let slab = -1;
  if (cache !== undefined) {
    at = cache.alloc(len);
    mem = cache.mem;
    slab = cache.slab;
  } else {
    at = allocOutside(len);
    mem = outside.mem;
  }
  mem.u8.set(buf.subarray(0, len), at);
  const node = new BNode(addr, leaf, n, mem.u8, mem.dv, at + p, at + p + n * C);
  node.size = len;
  node.base = at;
  node.slab = slab;
  if (flags & FLAG_ROOT) {
    node.isRoot = true;
    node.level = level;
    node.prefixLen = prefixLen;
    if (prefixAt >= 0 && prefixLen > 0) node.setPrefix(mem.u8.subarray(at + prefixAt, at + prefixAt + prefixLen * C), mem.u8, at + prefixAt);
    if (firstPiece >= 0) node.pieces = [firstPiece];
  }
  return node;
}

/** Decodes a prefix piece: its data (a view into buf) and the next piece address (-1 = none). */
export function decodePiece(buf: Uint8Array, addr: number, C: number, checksum: Checksum = crc32c): { data: Uint8Array; next: number; size: number } {
  const len = verifyNode(buf, addr, C, checksum);
  if (buf[5] !== TYPE_PIECE) throw corrupt(addr, `expected a prefix piece, found node type ${buf[5]}`);
  const n = buf[6]! | (buf[7]! << 8);
  if (PIECE_HEADER_SIZE + n !== len) throw corrupt(addr, 'prefix piece length mismatch');
  const none = rd32(buf, 16) === 0xffffffff && rd32(buf, 20) === 0xffffffff;
  const next = none ? -1 : rd53(buf, 16, addr);
  return { data: buf.subarray(PIECE_HEADER_SIZE, len), next, size: len };
}

/** A node over fresh memory holding the given entries (for tools and tests). */
export function nodeFromEntries(addr: number, leaf: boolean, chunks: Uint8Array, ptrs: ArrayLike<number>, kinds: ArrayLike<number> | null, C: number): BNode {
  const n = ptrs.length;
  const mem = new Mem(new ArrayBuffer(n * (C + PTR_SIZE)));
  mem.u8.set(chunks.subarray(0, n * C), 0);
  for (let i = 0; i < n; i++) setPtr(mem.dv, n * C + 8 * i, ptrs[i]!, kinds !== null && kinds[i] === KIND_TRIE);
  return new BNode(addr, leaf, n, mem.u8, mem.dv, 0, n * C);
}

/** The chunks of a node as a new array (for tools and tests). */
export function nodeChunks(node: BNode, C: number): Uint8Array {
  return node.u8.slice(node.ko, node.ko + node.n * C);
}

/** The pointers of a node (for tools and tests). */
export function nodePtrs(node: BNode): number[] {
  return Array.from({ length: node.n }, (_, i) => ptrAt(node, i));
}

/** The kinds of a leaf's entries (for tools and tests). */
export function nodeKinds(node: BNode): number[] {
  return Array.from({ length: node.n }, (_, i) => (isTrieAt(node, i) ? KIND_TRIE : KIND_VALUE));
}
