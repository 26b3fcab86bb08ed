/**
 * The lookup and batch fast paths: search samples (samples.ts) on nodes of every size and with
 * chunks that share their first word, lookups through them while the cache moves and evicts
 * nodes, the galloping child search of batches (findChildFrom) at child boundaries, and the
 * trie's `checksum` option (the engine passes its native CRC32C).
 */
import test from 'ava';
import { check, HBTrie, HBTrieError, MemoryNodeStore, type BatchOp } from '../src/hbtrie/index.js';
import { findChild, findChildFrom, findExactAt, findExactIn, keyWords, upperBoundAt } from '../src/hbtrie/btree.js';
import { nodeFromEntries } from '../src/hbtrie/node.js';
import { SAMPLE_MIN, SAMPLE_STRIDE, sampleCount, sampledRange, writeSamples } from '../src/hbtrie/samples.js';
import { crc32c } from '../src/hbtrie/crc32c.js';
import { crc32c as engineCrc32c } from '../src/engine/checksum.js';
import { Prng } from '../src/io/prng.js';

const SEED = process.env.HBTRIE_SEED !== undefined ? Number(process.env.HBTRIE_SEED) : (Date.now() % 1e9) >>> 0;

/** A seeded generator of floats in [0, 1) (the shared mulberry32 of src/io). */
function prng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.next();
}

const cmpBytes = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);

/**
 * n distinct sorted chunks of C bytes whose first 4 bytes come from a few values (so runs of
 * chunks share their first word, across sample boundaries) or are random.
 */
function chunks(r: () => number, n: number, C: number, shared: boolean): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  while (out.length < n) {
    const c = Uint8Array.from({ length: C }, () => Math.floor(r() * 256));
    if (shared) c.set([0x40, 0x41, 0, Math.floor(r() * 3)].slice(4 - Math.min(4, C - 1)), 0);
    const k = Buffer.from(c).toString('hex');
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(c);
  }
  return out.sort(cmpBytes);
}

/** Probe chunks: every stored chunk, and chunks between and around them. */
function probes(r: () => number, list: Uint8Array[], C: number): Uint8Array[] {
  const out = [...list];
  for (const c of list) {
    const below = c.slice();
    below[C - 1] = (below[C - 1]! + 255) & 0xff;
    const above = c.slice();
    above[C - 1] = (above[C - 1]! + 1) & 0xff;
    out.push(below, above);
  }
  for (let i = 0; i < 50; i++) out.push(Uint8Array.from({ length: C }, () => Math.floor(r() * 256)));
  out.push(new Uint8Array(C), new Uint8Array(C).fill(255));
  return out;
}

/** The key words of a raw chunk (keyWords works on keys: a key of C - 1 bytes then the marker). */
function chunkWords(c: Uint8Array, C: number): Int32Array {
  const W = (C + 3) >> 2;
  const kw = new Int32Array(W);
  for (let w = 0; w < W; w++) {
    let acc = 0;
    for (let j = 0; j < 4; j++) acc = (acc << 8) | (4 * w + j < C ? c[4 * w + j]! : 0);
    kw[w] = acc ^ (0x80000000 | 0);
  }
  return kw;
}

for (const C of [4, 5, 8, 12]) {
  test(`search samples bound the search on nodes of every size (chunk ${C})`, (t) => {
    const r = prng(SEED + C);
    let sampled = 0;
    for (let n = 0; n <= 300; n += n < 40 ? 1 : 13) {
      for (const shared of [false, true]) {
        const list = chunks(r, n, C, shared);
        const flat = new Uint8Array(n * C);
        list.forEach((c, i) => flat.set(c, i * C));
        const node = nodeFromEntries(-1, true, flat, list.map((_, i) => i), null, C);
        const G = sampleCount(n);
        t.is(G, n < SAMPLE_MIN ? 0 : Math.ceil(n / SAMPLE_STRIDE));
        if (G === 0) continue;
        sampled++;
        const side = new Int32Array(G + 3).fill(12345);
        writeSamples(side, 2, node.dv, node.ko, n, C);
        t.is(side[1], 12345, 'writes nothing before its region');
        t.is(side[2 + G], 12345, 'writes nothing after its region');
        for (const p of probes(r, list, C)) {
          const kw = chunkWords(p, C);
          const range = sampledRange(side, 2, G, kw[0]!, n);
          const lo = Math.floor(range / 65536);
          const hi = range % 65536;
          t.true(lo >= 0 && lo <= hi && hi <= n);
          // Every entry before lo is below the probe, every entry from hi on above it.
          if (lo > 0 && cmpBytes(list[lo - 1]!, p) >= 0) t.fail(`n ${n}: entry ${lo - 1} is not below the probe (seed ${SEED})`);
          if (hi < n && cmpBytes(list[hi]!, p) <= 0) t.fail(`n ${n}: entry ${hi} is not above the probe (seed ${SEED})`);
          // So the narrowed searches agree with the full ones.
          t.is(findExactIn(node.dv, node.u8, node.ko, lo, hi, kw, C), findExactAt(node.dv, node.u8, node.ko, n, kw, C));
          t.is(upperBoundAt(node.dv, node.u8, node.ko, hi, kw, C, lo), upperBoundAt(node.dv, node.u8, node.ko, n, kw, C, 0));
          if (!shared && hi - lo > 2 * SAMPLE_STRIDE) t.fail(`n ${n}: range ${lo}..${hi} is wider than the samples allow`);
        }
      }
    }
    t.true(sampled > 10);
  });
}

test('findChildFrom (galloping) equals findChild from every starting child', (t) => {
  const r = prng(SEED + 99);
  const C = 8;
  for (const n of [1, 2, 3, 5, 16, 17, 100, 255]) {
    const list = chunks(r, n, C, n > 50);
    const flat = new Uint8Array(n * C);
    list.forEach((c, i) => flat.set(c, i * C));
    const node = nodeFromEntries(-1, false, flat, list.map((_, i) => i), null, C);
    const ps = probes(r, list, C);
    for (let from = 0; from < n; from++) {
      for (const p of ps) {
        const kw = chunkWords(p, C);
        const want = findChild(node, kw, C, from);
        if (findChildFrom(node, kw, C, from) !== want) t.fail(`n ${n} from ${from}: ${findChildFrom(node, kw, C, from)} != ${want}`);
      }
    }
  }
  t.pass();
});

/** Keys whose first word (chunk 0's first 4 bytes) repeats a lot, and random ones. */
function keySet(r: () => number, count: number): Uint8Array[] {
  const seen = new Map<string, Uint8Array>();
  while (seen.size < count) {
    const len = 3 + Math.floor(r() * 20);
    const k = Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
    if (r() < 0.6) k.set([0x2f, 0x61, Math.floor(r() * 4)], 0);
    seen.set(Buffer.from(k).toString('hex'), k);
  }
  return [...seen.values()].sort(cmpBytes);
}

for (const [label, cacheBytes] of [
  ['a cache that holds everything', 64 << 20],
  ['a cache that moves and evicts nodes meanwhile', 6 * 4096],
] as const) {
  test(`lookups through search samples match a model, with ${label}`, (t) => {
    const r = prng(SEED + cacheBytes);
    const all = keySet(r, 12000);
    const records: Uint8Array[] = [];
    const model = new Map<string, number>();
    const store = new MemoryNodeStore({ blockSize: 4096 });
    const trie = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: 8, cacheBytes });
    let root: number | null = null;
    const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');
    for (let round = 0; round < 12; round++) {
      // A batch of puts and removes.
      const pick = new Map<string, Uint8Array>();
      const size = round === 0 ? 6000 : 1 + Math.floor(r() * 1500);
      while (pick.size < size) {
        const k = all[Math.floor(r() * all.length)]!;
        pick.set(hex(k), k);
      }
      const ops: BatchOp[] = [...pick.values()].sort(cmpBytes).map((key) => {
        if (round > 0 && r() < 0.3) return { key, remove: true as const };
        records.push(key);
        return { key, value: records.length - 1 };
      });
      root = trie.applyBatch(root, ops).root;
      for (const op of ops) {
        if (op.remove === true) model.delete(hex(op.key));
        else model.set(hex(op.key), op.value);
      }
      // Lookups: every key of the set (present or not) twice, so the second pass goes through
      // the samples and child locations the first recorded.
      for (let pass = 0; pass < 2; pass++) {
        let wrong = 0;
        for (const k of all) if (trie.get(root, k) !== model.get(hex(k))) wrong++;
        t.is(wrong, 0, `round ${round} pass ${pass} (seed ${SEED})`);
      }
    }
    t.is(check(trie.core, root, { keys: true }).values, model.size);
  });
}

test('batches whose operations fall on child boundaries (galloping child search)', (t) => {
  // Sequential keys: leaves of consecutive ranges. Operations on the first and last key of every
  // leaf, and on keys between leaves, in one batch.
  const C = 8;
  const n = 40000;
  const key = (i: number): Uint8Array => Buffer.from(`k${String(i).padStart(7, '0')}`);
  const records: Uint8Array[] = [];
  const store = new MemoryNodeStore({ blockSize: 1024 });
  const trie = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: C });
  const ops: BatchOp[] = [];
  for (let i = 0; i < n; i += 2) {
    records.push(key(i));
    ops.push({ key: key(i), value: records.length - 1 });
  }
  let root = trie.applyBatch(null, ops).root;
  const want = new Map<number, number>(ops.map((op, i) => [2 * i, op.value!]));
  // Boundaries: with 1024-byte blocks a leaf holds at most 63 entries; touch every 7th key
  // and runs around multiples of 63 (odd keys are inserts between existing ones).
  for (let round = 0; round < 3; round++) {
    const idx = new Set<number>();
    for (let i = 0; i < n; i += 7 + round) idx.add(i);
    for (let m = 0; m < n; m += 2 * 63) for (let d = -3; d <= 3; d++) if (m + d >= 0 && m + d < n) idx.add(m + d);
    const batch: BatchOp[] = [...idx].sort((a, b) => a - b).map((i) => {
      if (round === 2 && i % 3 === 0) return { key: key(i), remove: true as const };
      records.push(key(i));
      return { key: key(i), value: records.length - 1 };
    });
    root = trie.applyBatch(root, batch).root;
    for (const op of batch) {
      const i = Number(Buffer.from(op.key).toString().slice(1));
      if (op.remove === true) want.delete(i);
      else want.set(i, op.value);
    }
  }
  let wrong = 0;
  for (let i = 0; i < n; i++) if (trie.get(root, key(i)) !== want.get(i)) wrong++;
  t.is(wrong, 0);
  t.is(check(trie.core, root, { keys: true }).values, want.size);
});

test('checksum option: nodes carry the given function, which must match the reader', (t) => {
  const records = Array.from({ length: 3000 }, (_, i) => Buffer.from(`key-${i * 7919}`)).sort(cmpBytes);
  const ops: BatchOp[] = records.map((key, i) => ({ key, value: i }));
  const keyReader = (v: number): Uint8Array => records[v]!;
  // The engine's CRC32C (native where the library loads) writes the same bytes as the default.
  const a = new MemoryNodeStore({ blockSize: 4096 });
  const b = new MemoryNodeStore({ blockSize: 4096 });
  let calls = 0;
  const counted = (buf: Uint8Array, start: number, end: number): number => {
    calls++;
    return engineCrc32c(buf, start, end);
  };
  const rootA = new HBTrie({ store: a, keyReader }).applyBatch(null, ops).root!;
  const rootB = new HBTrie({ store: b, keyReader, checksum: counted }).applyBatch(null, ops).root!;
  t.is(rootA, rootB);
  t.true(calls > 0, 'the given function checksums the nodes written');
  t.is(a.blocksWritten, b.blocksWritten);
  for (let i = 0; i < a.blocksWritten; i++) t.deepEqual(a.blockAt(i * 4096), b.blockAt(i * 4096), `block ${i}`);
  // Reading verifies with the given function too.
  calls = 0;
  const readB = new HBTrie({ store: b, keyReader, checksum: counted });
  t.is(check(readB.core, rootB, { keys: true }).values, records.length);
  t.true(calls > 0, 'the given function verifies the nodes read');

  // A different function: its nodes fail the default's verification (CORRUPT), and read back
  // with the same function.
  const other = (buf: Uint8Array, start: number, end: number): number => (crc32c(buf, start, end) ^ 0x5a5a5a5a) >>> 0;
  const c = new MemoryNodeStore({ blockSize: 4096 });
  const rootC = new HBTrie({ store: c, keyReader, checksum: other }).applyBatch(null, ops).root!;
  const err = t.throws(() => new HBTrie({ store: c, keyReader }).get(rootC, records[0]!), { instanceOf: HBTrieError });
  t.is(err?.code, 'CORRUPT');
  t.is(new HBTrie({ store: c, keyReader, checksum: other }).get(rootC, records[5]!), 5);
  // A function returning a signed 32-bit result is read as unsigned.
  const signed = (buf: Uint8Array, start: number, end: number): number => crc32c(buf, start, end) | 0;
  t.is(new HBTrie({ store: a, keyReader, checksum: signed }).get(rootA, records[7]!), 7);

  t.throws(() => new HBTrie({ store: a, keyReader, checksum: 5 as unknown as typeof crc32c }), { instanceOf: HBTrieError });
});

test('keyWords of a whole chunk equals the words the samples are compared with', (t) => {
  // The samples hold chunk words as btree.ts reads them; a key's chunk words (keyWords) must use
  // the same transform, or sampledRange would compare unlike values.
  const C = 8;
  const key = Uint8Array.of(0x00, 0x7f, 0x80, 0xff, 1, 2, 3, 9);
  const kw = new Int32Array(2);
  keyWords(key, 0, C, kw);
  const chunk = Uint8Array.of(0x00, 0x7f, 0x80, 0xff, 1, 2, 3, 8);
  const node = nodeFromEntries(-1, true, chunk, [0], null, C);
  const side = new Int32Array(sampleCount(SAMPLE_MIN));
  const many = new Uint8Array(SAMPLE_MIN * C);
  for (let i = 0; i < SAMPLE_MIN; i++) many.set(chunk, i * C);
  writeSamples(side, 0, new DataView(many.buffer), 0, SAMPLE_MIN, C);
  t.is(side[0], kw[0]);
  t.is(findExactAt(node.dv, node.u8, node.ko, 1, kw, C), 0);
});

test('lookups after the root node left the cache (the remembered top node is dropped)', (t) => {
  const records = Array.from({ length: 5000 }, (_, i) => Buffer.from(`r-${(i * 7919) % 100000}`)).sort(cmpBytes);
  const store = new MemoryNodeStore({ blockSize: 1024 });
  const trie = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: 8, cacheBytes: 8 * 1024 });
  const half = records.length >> 1;
  const r1 = trie.applyBatch(null, records.slice(0, half).map((key, i) => ({ key, value: i }))).root!;
  t.is(trie.get(r1, records[3]!), 3);
  trie.clearCache();
  t.is(trie.get(r1, records[4]!), 4, 'after clearCache');
  // Another root, then the first again: each lookup walks from its own root.
  const r2 = trie.applyBatch(r1, records.slice(half).map((key, i) => ({ key, value: half + i }))).root!;
  t.is(trie.get(r2, records[half + 1]!), half + 1);
  t.is(trie.get(r1, records[half + 1]!), undefined);
  t.is(trie.get(r1, records[5]!), 5);
  // A small cache: the root is evicted and its memory reused while lookups go on.
  let wrong = 0;
  for (let k = 0; k < 3; k++) for (let i = 0; i < records.length; i += 3) if (trie.get(r2, records[i]!) !== i) wrong++;
  t.is(wrong, 0);
});
