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
 */

import { crc32c } from './crc32c.js';
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

/**
 * A decoded (or new, not yet written) B+-tree node. Decoded nodes are immutable and shared
 * through the node cache. A node built during a batch has a negative `addr` (a temporary id)
 * until the batch is written.
 */
export class BNode {
  /** Byte address once written; negative temporary id while new. */
  addr: number;
  /** Serialized size in bytes (known for decoded nodes; computed at write for new nodes). */
  size = 0;
  leaf: boolean;
  n: number;
  /** n * C bytes of chunks (may be longer: only the first n * C are meaningful). */
  keys: Uint8Array;
  /** n pointers: values or addresses; negative = temporary id of a new node. */
  ptrs: Float64Array;
  /** Leaf only: KIND_VALUE or KIND_TRIE per entry. */
  kinds: Uint8Array | null;
  /** Root of a trie node: has a trie header. */
  isRoot = false;
  level = 0;
  prefixLen = 0;
  /** prefixLen * C bytes (the skipped chunks); EMPTY when prefixLen is 0. */
  prefix: Uint8Array = EMPTY;
  /** External prefix pieces of a decoded node: [addr0, size0, addr1, size1, ...]. */
  pieces: number[] | null = null;
  /** Second-chance bit for the node cache. */
  hot = false;
  /**
   * The chunks as big-endian 32-bit words (sign bit flipped, so signed order is byte order),
   * ceil(C / 4) words per chunk, zero-padded: built on first search (see btree.ts).
   */
  words: Int32Array | null = null;

  constructor(addr: number, leaf: boolean, n: number, keys: Uint8Array, ptrs: Float64Array, kinds: Uint8Array | null) {
    this.addr = addr;
    this.leaf = leaf;
    this.n = n;
    this.keys = keys;
    this.ptrs = ptrs;
    this.kinds = kinds;
  }

  setHeader(level: number, prefixLen: number, prefix: Uint8Array): void {
    this.isRoot = true;
    this.level = level;
    this.prefixLen = prefixLen;
    this.prefix = prefixLen === 0 ? EMPTY : prefix;
  }
}

export interface Entries {
  keys: Uint8Array;
  ptrs: Float64Array;
  kinds: Uint8Array | null;
}

/**
 * Memory for node arrays comes from 64 KiB arenas: V8 makes every ArrayBuffer an external
 * allocation that costs microseconds to create and pressures the garbage collector, and a batch
 * creates thousands of nodes. An arena is freed when no node carved from it is referenced any
 * more; the price is that one cached node keeps its whole arena alive (at most 64 KiB per
 * cached node, in practice nodes of one batch are cached and evicted together).
 */
const ARENA = 65536;
let arenaBuf = new ArrayBuffer(ARENA);
let arenaOff = 0;
/** The buffer of the last arenaAlloc. */
let allocBuf = arenaBuf;

/** Reserves `bytes` (rounded up to 8); returns the offset in `allocBuf`. */
function arenaAlloc(bytes: number): number {
  bytes = (bytes + 7) & ~7;
  if (bytes > ARENA >> 2) {
    allocBuf = new ArrayBuffer(bytes);
    return 0;
  }
  if (arenaOff + bytes > ARENA) {
    arenaBuf = new ArrayBuffer(ARENA);
    arenaOff = 0;
  }
  allocBuf = arenaBuf;
  const off = arenaOff;
  arenaOff += bytes;
  return off;
}

/** A zeroed Int32Array of n elements from the arena. */
export function allocInt32(n: number): Int32Array {
  const off = arenaAlloc(n * 4);
  return new Int32Array(allocBuf, off, n);
}

/** A zeroed Uint8Array of n bytes from the arena. */
export function allocBytes(n: number): Uint8Array {
  const off = arenaAlloc(n);
  return new Uint8Array(allocBuf, off, n);
}

/** Arrays for `cap` entries, carved from one arena allocation. */
export function allocEntries(cap: number, C: number, leaf: boolean): Entries {
  const off = arenaAlloc(cap * (PTR_SIZE + C) + (leaf ? cap : 0));
  const buf = allocBuf;
  return {
    ptrs: new Float64Array(buf, off, cap),
    keys: new Uint8Array(buf, off + cap * PTR_SIZE, cap * C),
    kinds: leaf ? new Uint8Array(buf, off + cap * (PTR_SIZE + C), cap) : null,
  };
}

/** Entries [a, b) of the given arrays, copied into one new allocation. */
export function sliceEntries(keys: Uint8Array, ptrs: Float64Array, kinds: Uint8Array | null, a: number, b: number, C: number): Entries {
  const e = allocEntries(b - a, C, kinds !== null);
  e.keys.set(keys.subarray(a * C, b * C));
  e.ptrs.set(ptrs.subarray(a, b));
  if (kinds !== null) e.kinds!.set(kinds.subarray(a, b));
  return e;
}

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

function wr64(b: Uint8Array, o: number, v: number, topBit: number): void {
  const lo = v >>> 0;
  const hi = ((v - lo) / TWO32) | (topBit << 31);
  b[o] = lo;
  b[o + 1] = lo >>> 8;
  b[o + 2] = lo >>> 16;
  b[o + 3] = lo >>> 24;
  b[o + 4] = hi;
  b[o + 5] = hi >>> 8;
  b[o + 6] = hi >>> 16;
  b[o + 7] = hi >>> 24;
}

function finish(b: Uint8Array, off: number, len: number): void {
  wr32(b, off, crc32c(b, off + 4, off + len));
}

/**
 * Serializes `node` at out[off, off + size). `resolve` maps a pointer (possibly a temporary id) to
 * its final address. `prefixAddr` is the address of the first prefix piece when the prefix is
 * external. Returns the size written.
 */
export function encodeNode(
  node: BNode,
  C: number,
  inlineMax: number,
  out: Uint8Array,
  off: number,
  resolve: (p: number) => number,
  prefixAddr: number,
): number {
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
      out.set(node.prefix, p);
      p += pb;
    } else {
      flags |= FLAG_EXTERNAL_PREFIX;
      wr64(out, p, prefixAddr, 0);
      p += 8;
    }
  }
  out[off + 13] = flags;
  out[off + 14] = 0;
  out[off + 15] = 0;
  const kb = n * C;
  out.set(node.keys.subarray(0, kb), p);
  p += kb;
  const ptrs = node.ptrs;
  const kinds = node.kinds;
  for (let i = 0; i < n; i++, p += 8) {
    const v = ptrs[i]!;
    wr64(out, p, v < 0 ? resolve(v) : v, kinds !== null ? kinds[i]! : 0);
  }
  finish(out, off, len);
  return len;
}

/** Serializes a prefix piece holding data[start, end) with a link to `next` (-1 for none). */
export function encodePiece(out: Uint8Array, off: number, C: number, data: Uint8Array, start: number, end: number, next: number): number {
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
    wr64(out, off + 16, next, 0);
  }
  out.set(data.subarray(start, end), off + PIECE_HEADER_SIZE);
  finish(out, off, len);
  return len;
}

/** Checks the common header and checksum; returns the node length. */
export function verifyNode(buf: Uint8Array, addr: number, C: number): number {
  if (buf.length < HEADER_SIZE) throw corrupt(addr, `only ${buf.length} bytes are left in the block`);
  if (buf[4] !== NODE_MAGIC) throw corrupt(addr, `bad magic byte 0x${buf[4]!.toString(16)}`);
  const len = rd32(buf, 8);
  if (len < HEADER_SIZE || len > buf.length) throw corrupt(addr, `bad length ${len}`);
  const want = rd32(buf, 0);
  const got = crc32c(buf, 4, len);
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
 * Decodes a leaf or internal node from `buf` (a view starting at the node). Arrays are copied, so
 * the buffer may be reused afterwards. An external prefix is not read here: `pieces` receives the
 * first piece's address as [addr] and the caller follows the chain (see readPiece).
 */
export function decodeNode(buf: Uint8Array, addr: number, C: number): BNode {
  const len = verifyNode(buf, addr, C);
  const type = buf[5];
  if (type !== TYPE_LEAF && type !== TYPE_INTERNAL) throw corrupt(addr, `unexpected node type ${type}`);
  const n = buf[6]! | (buf[7]! << 8);
  const flags = buf[13]!;
  let p = HEADER_SIZE;
  let level = 0;
  let prefixLen = 0;
  let prefix: Uint8Array = EMPTY;
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
      prefix = allocBytes(pb);
      prefix.set(buf.subarray(p, p + pb));
      p += pb;
    }
  }
  if (p + n * (C + PTR_SIZE) !== len) throw corrupt(addr, `length ${len} does not match ${n} entries`);
  const leaf = type === TYPE_LEAF;
  const { keys, ptrs, kinds } = allocEntries(n, C, leaf);
  keys.set(buf.subarray(p, p + n * C));
  p += n * C;
  for (let i = 0; i < n; i++, p += 8) {
    const top = buf[p + 7]! >>> 7;
    if (top !== 0) {
      if (kinds === null) throw corrupt(addr, 'sub-trie flag in an internal node');
      kinds[i] = 1;
    }
    ptrs[i] = rd53(buf, p, addr);
  }
  const node = new BNode(addr, leaf, n, keys, ptrs, kinds);
  node.size = len;
  if (flags & FLAG_ROOT) {
    node.isRoot = true;
    node.level = level;
    node.prefixLen = prefixLen;
    node.prefix = prefix;
    if (firstPiece >= 0) node.pieces = [firstPiece];
  }
  return node;
}

/** Decodes a prefix piece: its data (a view into buf) and the next piece address (-1 = none). */
export function decodePiece(buf: Uint8Array, addr: number, C: number): { data: Uint8Array; next: number; size: number } {
  const len = verifyNode(buf, addr, C);
  if (buf[5] !== TYPE_PIECE) throw corrupt(addr, `expected a prefix piece, found node type ${buf[5]}`);
  const n = buf[6]! | (buf[7]! << 8);
  if (PIECE_HEADER_SIZE + n !== len) throw corrupt(addr, 'prefix piece length mismatch');
  const none = rd32(buf, 16) === 0xffffffff && rd32(buf, 20) === 0xffffffff;
  const next = none ? -1 : rd53(buf, 16, addr);
  return { data: buf.subarray(PIECE_HEADER_SIZE, len), next, size: len };
}
