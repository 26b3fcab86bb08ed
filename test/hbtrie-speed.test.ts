/**
 * The lookup fast paths of trie.ts find: the chunk-size-8 searches (btree.ts upperBound8 and
 * findExact8, the key chunk held as two words), the skipped-prefix check that compares key
 * bytes directly, and the hot mark written only when clear. No timing here: bench/hbtrie.ts
 * measures; these check that the fast paths answer what the general code answers.
 */
import test from 'ava';
import { HBTrie, MemoryNodeStore, type BatchOp } from '../src/hbtrie/index.js';
import { findExact8, findExactIn, upperBound8, upperBoundAt } from '../src/hbtrie/btree.js';
import { HOT_MARK, nodeFromEntries } from '../src/hbtrie/node.js';
import { Prng } from '../src/io/prng.js';

const SEED = process.env.HBTRIE_SEED !== undefined ? Number(process.env.HBTRIE_SEED) : (Date.now() % 1e9) >>> 0;
const cmpBytes = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);

/** The words a lookup compares with (big-endian, sign flipped) of a raw 8-byte chunk. */
function words8(c: Uint8Array): [number, number] {
  const w = (o: number): number => ((c[o]! << 24) | (c[o + 1]! << 16) | (c[o + 2]! << 8) | c[o + 3]!) ^ (0x80000000 | 0);
  return [w(0), w(4)];
}

test('upperBound8 and findExact8 equal the general searches on every range', (t) => {
  const p = new Prng(SEED);
  const byte = (): number => {
    // Bytes on both sides of the sign bit, and a few values that repeat (equal first words).
    const x = p.next();
    return x < 0.3 ? [0x00, 0x7f, 0x80, 0xff][Math.floor(p.next() * 4)]! : Math.floor(p.next() * 256);
  };
  let checked = 0;
  for (const n of [0, 1, 2, 3, 7, 16, 33, 100, 255]) {
    const seen = new Map<string, Uint8Array>();
    while (seen.size < n) {
      const c = Uint8Array.from({ length: 8 }, byte);
      if (p.next() < 0.5) c.set([0x80, 0x00, 0x7f, 0xff], 0); // share the first word
      seen.set(Buffer.from(c).toString('hex'), c);
    }
    const list = [...seen.values()].sort(cmpBytes);
    const flat = new Uint8Array(n * 8);
    list.forEach((c, i) => flat.set(c, i * 8));
    const node = nodeFromEntries(-1, true, flat, list.map((_, i) => i), null, 8);
    const probes = [...list];
    for (const c of list) {
      for (const at of [3, 7]) {
        const below = c.slice();
        below[at] = (below[at]! + 255) & 0xff;
        const above = c.slice();
        above[at] = (above[at]! + 1) & 0xff;
        probes.push(below, above);
      }
    }
    for (let k = 0; k < 40; k++) probes.push(Uint8Array.from({ length: 8 }, byte));
    const kw = new Int32Array(2);
    for (const probe of probes) {
      const [k0, k1] = words8(probe);
      kw[0] = k0;
      kw[1] = k1;
      for (let lo = 0; lo <= n; lo += 1 + (n >> 3)) {
        for (let hi = lo; hi <= n; hi += 1 + (n >> 3)) {
          const ub = upperBound8(node.dv, node.ko, lo, hi, k0, k1);
          const ex = findExact8(node.dv, node.ko, lo, hi, k0, k1);
          if (ub !== upperBoundAt(node.dv, node.u8, node.ko, hi, kw, 8, lo)) t.fail(`upperBound8 n ${n} [${lo}, ${hi}) (seed ${SEED})`);
          if (ex !== findExactIn(node.dv, node.u8, node.ko, lo, hi, kw, 8)) t.fail(`findExact8 n ${n} [${lo}, ${hi}) (seed ${SEED})`);
          checked++;
        }
      }
    }
  }
  t.true(checked > 10000);
});

/**
 * Keys in groups that share long prefixes (so sub-tries with skipped prefixes of several
 * chunks), with prefix lengths around chunk boundaries (7 key bytes per chunk at C = 8).
 */
function prefixKeys(p: Prng): Uint8Array[] {
  const seen = new Map<string, Uint8Array>();
  for (let g = 0; g < 40; g++) {
    const plen = [6, 7, 8, 13, 14, 15, 21, 28, 40][g % 9]!;
    const prefix = Uint8Array.from({ length: plen }, () => Math.floor(p.next() * 256));
    prefix[0] = g; // groups differ in their first byte
    const count = 2 + Math.floor(p.next() * 30);
    for (let k = 0; k < count; k++) {
      const tail = Uint8Array.from({ length: 1 + Math.floor(p.next() * 12) }, () => Math.floor(p.next() * 256));
      const key = new Uint8Array(plen + tail.length);
      key.set(prefix, 0);
      key.set(tail, plen);
      seen.set(Buffer.from(key).toString('hex'), key);
    }
    // A key that is the group's prefix itself, in some groups.
    if (g % 3 === 0) seen.set(Buffer.from(prefix).toString('hex'), prefix);
  }
  return [...seen.values()].sort(cmpBytes);
}

test('lookups through skipped prefixes (chunk 8): present keys, keys that leave a prefix, keys that end inside one', (t) => {
  const p = new Prng(SEED + 1);
  const keys = prefixKeys(p);
  const store = new MemoryNodeStore({ blockSize: 4096 });
  const trie = new HBTrie({ store, keyReader: (v) => keys[v]!, chunkSize: 8 });
  const ops: BatchOp[] = keys.map((key, i) => ({ key, value: i }));
  const root = trie.applyBatch(null, ops).root;
  const stats = trie.check(root, { keys: true });
  t.true(stats.trieNodes > 20, 'sub-tries with prefixes were built');
  const stored = new Map(keys.map((k, i) => [Buffer.from(k).toString('hex'), i]));
  let leaving = 0;
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      t.is(trie.find(root, key), i);
      t.is(trie.get(root, key), i);
      // Every proper prefix of the key (ends inside a skipped prefix, at and around chunk
      // boundaries), and the key with one byte changed at every position.
      for (let len = 1; len < key.length; len++) {
        const short = key.subarray(0, len);
        const want = stored.get(Buffer.from(short).toString('hex'));
        if (trie.get(root, short) !== want) t.fail(`get of a ${len}-byte prefix of key ${i} (seed ${SEED})`);
      }
      for (let at = 0; at < key.length; at++) {
        const other = key.slice();
        other[at] = (other[at]! + 1 + Math.floor(p.next() * 255)) & 0xff;
        const want = stored.get(Buffer.from(other).toString('hex'));
        if (trie.get(root, other) !== want) t.fail(`get of key ${i} changed at byte ${at} (seed ${SEED})`);
      }
    }
    // A key that agrees with a sub-trie's path down to its skipped prefix and then differs in
    // the prefix gets no candidate at all from find (not merely one that get then refuses).
    // The bytes every key of a group (the keys with its first byte) shares: its prefix. Not
    // merely neighbours' shared bytes: two tails may start alike (seed 695415659 changed the
    // first byte of such a tail, past the prefix, where a candidate is right).
    const shared = new Map<number, number>();
    for (let g = 1; g < keys.length; g++) {
      const a = keys[g - 1]!;
      const b = keys[g]!;
      if (a[0] !== b[0]) continue;
      let n = 0;
      while (n < a.length && n < b.length && a[n] === b[n]) n++;
      shared.set(a[0]!, Math.min(shared.get(a[0]!) ?? n, n));
    }
    for (let g = 0; g < keys.length - 1; g++) {
      const a = keys[g]!;
      const b = keys[g + 1]!;
      if (a[0] !== b[0] || a.length < 16 || b.length < 16) continue;
      const s = shared.get(a[0]!)!;
      if (s < 14) continue;
      for (const at of [7, 8, 12, s - 1]) {
        if (at < 7 || at >= s) continue;
        const probe = a.slice();
        probe[at] = (probe[at]! + 1) & 0xff;
        if (stored.has(Buffer.from(probe).toString('hex'))) continue;
        leaving++;
        if (trie.find(root, probe) !== undefined) t.fail(`find of key ${g} changed at byte ${at} inside a prefix gave a candidate (seed ${SEED})`);
      }
    }
  }
  t.true(leaving > 20, `probes that leave a prefix (${leaving})`);
});

test('a lookup marks the cached nodes it reads as used (the hot mark is set, and stays set)', (t) => {
  const keys: Uint8Array[] = [];
  for (let i = 0; i < 3000; i++) keys.push(Buffer.from(`key-${String(i).padStart(6, '0')}`));
  const store = new MemoryNodeStore({ blockSize: 4096 });
  const trie = new HBTrie({ store, keyReader: (v) => keys[v]!, chunkSize: 8 });
  const root = trie.applyBatch(null, keys.map((key, i) => ({ key, value: i }))).root!;
  const top = trie.core.load(root);
  t.is(top.u8[top.base + HOT_MARK], 0, 'a node just written is not marked');
  t.is(trie.find(root, keys[1234]!), 1234);
  t.is(top.u8[top.base + HOT_MARK], 1, 'the root is marked');
  // The leaves on the lookup's path (one per trie level it went through) are marked, the
  // others not.
  let leaves = 0;
  let leafMarked = 0;
  for (const node of [...(trie.core.cache as unknown as { map: Map<number, typeof top> }).map.values()]) {
    if (!node.leaf) continue;
    leaves++;
    if (node.u8[node.base + HOT_MARK] === 1) leafMarked++;
  }
  t.true(leafMarked >= 1 && leafMarked <= 3 && leaves > 10, `${leafMarked} of ${leaves} leaves marked`);
  t.is(trie.find(root, keys[1234]!), 1234);
  t.is(top.u8[top.base + HOT_MARK], 1, 'and stays marked');
});
