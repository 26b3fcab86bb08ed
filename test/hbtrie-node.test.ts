/**
 * Node serialization: nodes round-trip through their byte form (read back by a trie with an
 * empty cache), the byte layout matches docs/FORMAT-hbtrie.md, nodes pack several to a block and
 * never cross a block boundary, and a flipped bit in a stored node is caught by its CRC32C with a
 * CORRUPT error that names the node's address.
 */
import test from 'ava';
import { check, collectNodes, HBTrie, HBTrieError, MemoryNodeStore, type BatchOp } from '../src/hbtrie/index.js';
import { BNode, decodeNode, encodeNode, KIND_TRIE, Mem, nodeChunks, nodeFromEntries, nodeKinds, nodePtrs, nodeSize } from '../src/hbtrie/node.js';
import { crc32c } from '../src/hbtrie/crc32c.js';

const SEED = process.env.HBTRIE_SEED !== undefined ? Number(process.env.HBTRIE_SEED) : (Date.now() % 1e9) >>> 0;

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A trie over a mix of keys: random, paths, and long keys sharing a 3000-byte prefix (pieces). */
function build(blockSize: number, chunkSize: number) {
  const r = prng(SEED);
  const keys = new Map<string, Uint8Array>();
  const add = (k: Uint8Array): void => void keys.set(Buffer.from(k).toString('latin1'), k);
  for (let i = 0; i < 600; i++) add(Uint8Array.from({ length: 1 + Math.floor(r() * 12) }, () => Math.floor(r() * 256)));
  for (let i = 0; i < 300; i++) add(enc(`/home/user${i % 7}/projects/p${i % 13}/file${i}.txt`));
  const long = Uint8Array.from({ length: 3000 }, () => Math.floor(r() * 256));
  for (let i = 0; i < 40; i++) {
    const k = new Uint8Array(3000 + 1 + (i % 5));
    k.set(long);
    k[3000] = i;
    add(k);
  }
  const sorted = [...keys.values()].sort((a, b) => Buffer.compare(a, b));
  const records = sorted;
  const store = new MemoryNodeStore({ blockSize });
  const trie = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize });
  const ops: BatchOp[] = sorted.map((key, i) => ({ key, value: i }));
  const res = trie.apply(null, ops);
  return { store, trie, records, root: res.root!, res };
}

function sameNode(t: import('ava').ExecutionContext, a: BNode, b: BNode, C: number): void {
  t.is(a.addr, b.addr);
  t.is(a.size, b.size);
  t.is(a.leaf, b.leaf);
  t.is(a.n, b.n);
  t.deepEqual(nodeChunks(a, C), nodeChunks(b, C));
  t.deepEqual(nodePtrs(a), nodePtrs(b));
  if (a.leaf) t.deepEqual(nodeKinds(a), nodeKinds(b));
  t.is(a.isRoot, b.isRoot);
  t.is(a.level, b.level);
  t.is(a.prefixLen, b.prefixLen);
  t.deepEqual(a.prefix, b.prefix);
  t.deepEqual(a.pieces, b.pieces);
}

for (const [blockSize, C] of [
  [4096, 8],
  [512, 4],
  [1024, 16],
] as const) {
  test(`nodes round-trip through the store (block ${blockSize}, chunk ${C})`, (t) => {
    const { store, trie, records, root, res } = build(blockSize, C);
    // A second trie over the same store starts with an empty cache: every node is read back,
    // checksummed and decoded, and must equal the node the writer kept in its cache.
    const fresh = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: C });
    const nodes = collectNodes(trie.core, root);
    let pieces = 0;
    for (const addr of nodes.keys()) {
      const cached = trie.core.cache.get(addr);
      if (cached === undefined) {
        pieces++; // prefix pieces are not cached on their own
        continue;
      }
      sameNode(t, fresh.core.load(addr), cached, C);
    }
    t.true(pieces > 0, 'the 3000-byte prefix is stored in pieces');
    const st = check(fresh.core, root, { keys: true });
    t.is(st.values, records.length);
    // Live bytes equal what the batch wrote (a fresh trie: nothing stale).
    t.is(st.bytes, res.writtenBytes);
    t.is(st.nodes + st.pieces, res.writtenNodes);
    // Nodes never cross a block boundary; several share a block.
    const blocks = new Set<number>();
    for (const [addr, size] of nodes) {
      const off = addr % blockSize;
      t.true(off + size <= blockSize, `node ${addr} of ${size} bytes crosses a block boundary`);
      blocks.add(addr - off);
    }
    t.true(blocks.size < nodes.size, 'nodes share blocks');
    t.is(blocks.size, res.writtenBlocks);
  });
}

test('byte layout of a leaf node matches the documented format', (t) => {
  const C = 8;
  const keys = new Uint8Array(2 * C);
  keys.set([0x61, 0, 0, 0, 0, 0, 0, 1], 0); // chunk of "a"
  keys.set([0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 8], C); // a continuing chunk
  const node = nodeFromEntries(-1, true, keys, [5, 2 ** 40 + 3], [0, KIND_TRIE], C);
  node.setHeader(3, 1, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  const size = nodeSize(node, C, 1024);
  t.is(size, 16 + 8 + 8 + 2 * (8 + 8));
  const mem = new Mem(new ArrayBuffer(size + 10));
  const out = mem.u8;
  encodeNode(node, C, 1024, mem, 10, (p) => p, -1);
  const b = out.subarray(10);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  t.is(dv.getUint32(0, true), crc32c(b, 4, size), 'CRC32C of bytes [4, len) at offset 0');
  t.is(b[4], 0xb7, 'magic');
  t.is(b[5], 1, 'type leaf');
  t.is(dv.getUint16(6, true), 2, 'entry count');
  t.is(dv.getUint32(8, true), size, 'length');
  t.is(b[12], C, 'chunk size');
  t.is(b[13], 1, 'flags: trie root, inline prefix');
  t.is(dv.getUint16(14, true), 0);
  t.is(dv.getUint32(16, true), 3, 'level');
  t.is(dv.getUint32(20, true), 1, 'prefix chunks');
  t.deepEqual(b.subarray(24, 32), Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), 'prefix');
  t.deepEqual(b.subarray(32, 48), keys, 'chunks');
  t.is(dv.getBigUint64(48, true), 5n, 'value pointer');
  t.is(dv.getBigUint64(56, true), (1n << 63n) | (2n ** 40n + 3n), 'sub-trie pointer: bit 63 set');
  const back = decodeNode(b, 12345, C);
  t.is(back.n, 2);
  t.deepEqual(nodePtrs(back), [5, 2 ** 40 + 3]);
  t.deepEqual(nodeKinds(back), [0, 1]);
  t.deepEqual(nodeChunks(back, C), keys);
  t.deepEqual(back.prefix, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
  t.is(back.level, 3);
});

test('a flipped bit in any stored node is caught: CORRUPT error naming the address', (t) => {
  const r = prng(SEED + 7);
  const { store, root, records } = build(1024, 8);
  const fresh0 = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: 8 });
  const nodes = [...collectNodes(fresh0.core, root)];
  let caught = 0;
  for (let trial = 0; trial < 150; trial++) {
    const [addr, size] = nodes[Math.floor(r() * nodes.length)]!;
    const block = store.blockAt(addr - (addr % 1024));
    const byte = (addr % 1024) + Math.floor(r() * size);
    const bit = 1 << Math.floor(r() * 8);
    block[byte] ^= bit;
    try {
      // A fresh trie (empty cache) reads everything back from the store.
      const fresh = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: 8 });
      const err = t.throws(() => check(fresh.core, root), { instanceOf: HBTrieError }, `trial ${trial} seed ${SEED}`);
      t.is(err?.code, 'CORRUPT');
      t.is(err?.address, addr);
      t.regex(err?.message ?? '', new RegExp(`address ${addr}\\b`));
      caught++;
    } finally {
      block[byte] ^= bit;
    }
  }
  t.is(caught, 150);
  // Restored: readable again.
  const fresh = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: 8 });
  t.is(check(fresh.core, root, { keys: true }).values, records.length);
});

test('a corrupt node surfaces from get and range too', (t) => {
  const { store, root, records } = build(4096, 8);
  const block = store.blockAt(root - (root % 4096));
  block[(root % 4096) + 20] ^= 0x10;
  const fresh = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: 8 });
  const e1 = t.throws(() => fresh.get(root, records[0]!), { instanceOf: HBTrieError });
  t.is(e1?.code, 'CORRUPT');
  t.is(e1?.address, root);
  const e2 = t.throws(() => [...fresh.range(root)], { instanceOf: HBTrieError });
  t.is(e2?.code, 'CORRUPT');
  // An address that holds no node.
  const e3 = t.throws(() => fresh.get(root + 4096 * 1000, records[0]!), { instanceOf: HBTrieError });
  t.is(e3?.code, 'CORRUPT');
});
