/**
 * Targeted edge cases of the HB+-trie: empty and single-key tries, key length limits, bad input,
 * removing missing keys, seeks past either end, bounds that are prefixes of keys, reverse scans
 * with deletions, bounded height for long shared prefixes, packing of small sub-tries, and
 * copy-on-write snapshots.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { check, collectNodes, compareKeys, HBTrie, HBTrieError, MAX_KEY_LENGTH, MemoryNodeStore, type BatchOp, type RangeOptions } from '../src/hbtrie/index.js';
import { ForestError } from '../src/errors.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A trie over a growing record log: put() appends the key as a record, its index is the value. */
function setup(opts: { chunkSize?: number; blockSize?: number; maxKeyLength?: number } = {}) {
  const records: Uint8Array[] = [];
  const store = new MemoryNodeStore({ blockSize: opts.blockSize ?? 4096 });
  const trie = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: opts.chunkSize ?? 8, maxKeyLength: opts.maxKeyLength });
  let root: number | null = null;
  const h = {
    store,
    trie,
    records,
    get root() {
      return root;
    },
    set root(r: number | null) {
      root = r;
    },
    put(k: Uint8Array | string) {
      const key = typeof k === 'string' ? enc(k) : k;
      records.push(key);
      const res = trie.put(root, key, records.length - 1);
      root = res.root;
      return res;
    },
    putAll(keys: (Uint8Array | string)[]) {
      const ks = keys.map((k) => (typeof k === 'string' ? enc(k) : k)).sort(compareKeys);
      const ops: BatchOp[] = ks.map((key) => {
        records.push(key);
        return { key, value: records.length - 1 };
      });
      const res = trie.apply(root, ops);
      root = res.root;
      return res;
    },
    del(k: Uint8Array | string) {
      const res = trie.remove(root, typeof k === 'string' ? enc(k) : k);
      root = res.root;
      return res;
    },
    scan(o: RangeOptions = {}) {
      return [...trie.range(root, o)].map((v) => dec(records[v]!));
    },
    get(k: string) {
      const v = trie.get(root, enc(k));
      return v === undefined ? undefined : dec(records[v]!);
    },
  };
  return h;
}

/** The trie's own code of the error `fn` throws (its ForestError code is checked too). */
function code(t: ExecutionContext, fn: () => unknown): string | undefined {
  const e = t.throws(fn, { instanceOf: HBTrieError });
  t.true(e instanceof ForestError);
  const forest = { BATCH_UNSORTED: 'INVALID_ARGUMENT', TOO_DEEP: 'UNSUPPORTED' }[e?.trieCode as string] ?? e?.trieCode;
  t.is(e?.code, forest as HBTrieError['code']);
  return e?.trieCode;
}

test('empty trie: lookups, scans and removes find nothing and write nothing', (t) => {
  const h = setup();
  t.is(h.trie.get(null, enc('a')), undefined);
  t.is(h.trie.find(null, enc('a')), undefined);
  t.deepEqual(h.scan(), []);
  t.deepEqual(h.scan({ reverse: true, gte: enc('a'), lt: enc('z') }), []);
  const r = h.trie.remove(null, enc('a'));
  t.is(r.root, null);
  t.is(r.writtenNodes, 0);
  t.is(h.trie.apply(null, []).root, null);
  t.is(h.store.blocksWritten, 0);
  t.deepEqual(check(h.trie.core, null), { nodes: 0, pieces: 0, bytes: 0, values: 0, trieNodes: 0, leaves: 0, internals: 0, height: 0, meanDepth: 0, trieHeight: 0 });
});

test('single key: get, scans with bounds on both sides, remove back to empty', (t) => {
  const h = setup();
  h.put('hello');
  t.is(h.get('hello'), 'hello');
  t.is(h.get('hell'), undefined);
  t.is(h.get('hello!'), undefined);
  t.deepEqual(h.scan(), ['hello']);
  t.deepEqual(h.scan({ reverse: true }), ['hello']);
  t.deepEqual(h.scan({ gt: enc('hello') }), []);
  t.deepEqual(h.scan({ gte: enc('hello') }), ['hello']);
  t.deepEqual(h.scan({ lt: enc('hello') }), []);
  t.deepEqual(h.scan({ lte: enc('hello') }), ['hello']);
  t.deepEqual(h.scan({ gt: enc('a'), lt: enc('z'), reverse: true }), ['hello']);
  t.deepEqual(h.scan({ gt: enc('hello'), reverse: true }), []);
  t.deepEqual(h.scan({ lt: enc('hello'), reverse: true }), []);
  t.deepEqual(h.scan({ gte: enc('hell'), lte: enc('hello!') }), ['hello']);
  const root = h.root;
  const res = h.del('hello');
  t.is(res.root, null);
  t.is(res.removed, 1);
  t.deepEqual(new Set(res.stale.map((s) => s.addr)), new Set(collectNodes(h.trie.core, root).keys()));
  t.is(h.get('hello'), undefined);
});

for (const C of [4, 8, 16, 64]) {
  test(`key of the maximum length (65535) is accepted and 65536 refused (chunk ${C})`, (t) => {
    const h = setup({ chunkSize: C });
    const max = new Uint8Array(MAX_KEY_LENGTH).fill(0x41);
    const max2 = max.slice();
    max2[MAX_KEY_LENGTH - 1] = 0x42;
    const shorter = max.slice(0, MAX_KEY_LENGTH - 1);
    h.putAll([max, max2, shorter, 'A']);
    for (const k of [max, max2, shorter]) t.is(h.trie.get(h.root, k), h.records.indexOf(k));
    t.deepEqual(
      [...h.trie.range(h.root)].map((v) => h.records[v]!.length),
      [1, MAX_KEY_LENGTH - 1, MAX_KEY_LENGTH, MAX_KEY_LENGTH],
    );
    t.deepEqual([...h.trie.range(h.root, { gt: shorter, lt: max2 })].map((v) => h.records[v]!.length), [MAX_KEY_LENGTH]);
    const tooLong = new Uint8Array(MAX_KEY_LENGTH + 1);
    t.is(code(t, () => h.trie.put(h.root, tooLong, 1)), 'KEY_TOO_LONG');
    t.is(code(t, () => h.trie.get(h.root, tooLong)), 'KEY_TOO_LONG');
    t.is(code(t, () => h.trie.remove(h.root, tooLong)), 'KEY_TOO_LONG');
    t.is(code(t, () => h.trie.range(h.root, { gte: tooLong })), 'KEY_TOO_LONG');
    t.is(check(h.trie.core, h.root, { keys: true }).values, 4);
  });
}

test('empty keys, bad values, unsorted batches and bad options are refused; nothing is written', (t) => {
  const h = setup();
  h.putAll(['a', 'b', 'c']);
  const before = h.store.blocksWritten;
  const root = h.root;
  const empty = new Uint8Array(0);
  t.is(code(t, () => h.trie.put(root, empty, 1)), 'KEY_EMPTY');
  t.is(code(t, () => h.trie.get(root, empty)), 'KEY_EMPTY');
  t.is(code(t, () => h.trie.find(root, empty)), 'KEY_EMPTY');
  t.is(code(t, () => h.trie.remove(root, empty)), 'KEY_EMPTY');
  t.is(code(t, () => h.trie.range(root, { lt: empty })), 'KEY_EMPTY');
  for (const v of [-1, 1.5, 2 ** 53, NaN, Infinity]) t.is(code(t, () => h.trie.put(root, enc('x'), v)), 'INVALID_ARGUMENT');
  t.is(code(t, () => h.trie.apply(root, [{ key: enc('b'), value: 1 }, { key: enc('a'), value: 2 }])), 'BATCH_UNSORTED');
  t.is(code(t, () => h.trie.apply(root, [{ key: enc('a'), value: 1 }, { key: enc('a'), remove: true }])), 'BATCH_UNSORTED');
  t.is(code(t, () => h.trie.apply(root, [{ key: enc('a'), value: 1 }, { key: empty, value: 2 }])), 'KEY_EMPTY');
  t.is(code(t, () => h.trie.put(root, 'abc' as unknown as Uint8Array, 1)), 'INVALID_ARGUMENT');
  t.is(h.store.blocksWritten, before);
  t.deepEqual(h.scan(), ['a', 'b', 'c']);
  t.is(code(t, () => new HBTrie({ store: h.store, keyReader: () => enc('a'), chunkSize: 3 })), 'INVALID_ARGUMENT');
  t.is(code(t, () => new HBTrie({ store: h.store, keyReader: () => enc('a'), chunkSize: 65 })), 'INVALID_ARGUMENT');
  t.is(code(t, () => new MemoryNodeStore({ blockSize: 1000 })), 'INVALID_ARGUMENT');
  // A configured smaller key limit.
  const small = setup({ maxKeyLength: 10 });
  t.is(code(t, () => small.put('01234567890')), 'KEY_TOO_LONG');
  t.notThrows(() => small.put('0123456789'));
});

test('replaced lists the old values of updated and removed keys, and nothing else', (t) => {
  const h = setup({ chunkSize: 4 });
  h.putAll(['apple', 'apricot', 'banana', 'band', 'bandana']);
  const v = (k: string): number => h.trie.get(h.root, enc(k))!;
  const [apple, banana, band] = [v('apple'), v('banana'), v('band')];
  // Update apple, remove banana, put band's own value again (no change), insert two keys, remove
  // a missing one: only apple's and banana's old values are no longer referenced.
  h.records.push(enc('apple'), enc('appletree'), enc('bandit'));
  const n = h.records.length;
  const res = h.trie.apply(h.root, [
    { key: enc('apple'), value: n - 3 },
    { key: enc('appletree'), value: n - 2 },
    { key: enc('b'), remove: true },
    { key: enc('banana'), remove: true },
    { key: enc('band'), value: band },
    { key: enc('bandit'), value: n - 1 },
  ]);
  t.deepEqual([...res.replaced].sort((a, b) => a - b), [apple, banana].sort((a, b) => a - b));
  t.is(res.updated, 1);
  t.is(res.removed, 1);
  t.is(res.inserted, 2);
  h.root = res.root;
  t.deepEqual(h.trie.put(h.root, enc('zebra'), 99).replaced, []);
  t.deepEqual(h.trie.remove(h.root, enc('nothing')).replaced, []);
});

test('removing a missing key changes nothing', (t) => {
  const h = setup({ chunkSize: 4 });
  h.putAll(['apple', 'apricot', 'banana', 'band', 'bandana', 'user:000000001', 'user:000000002']);
  const root = h.root;
  const blocks = h.store.blocksWritten;
  for (const k of ['apples', 'appl', 'a', 'bandanas', 'user:000000003', 'user:', 'zzz', '\x00', 'banan']) {
    const r = h.del(k);
    t.is(r.root, root, k);
    t.is(r.removed, 0);
    t.deepEqual(r.stale, []);
    t.is(r.writtenNodes, 0);
  }
  const r = h.trie.apply(root, ['aa', 'apricots', 'bz'].map((k) => ({ key: enc(k), remove: true as const })));
  t.is(r.root, root);
  t.is(h.store.blocksWritten, blocks);
});

test('seeks past the end and before the start', (t) => {
  const h = setup({ chunkSize: 4 });
  const keys = Array.from({ length: 500 }, (_, i) => `key${String(i).padStart(4, '0')}`);
  h.putAll(keys);
  t.deepEqual(h.scan({ gt: enc('key0499') }), []);
  t.deepEqual(h.scan({ gte: enc('key05') }), []);
  t.deepEqual(h.scan({ gte: enc('\xff') }), []);
  t.deepEqual(h.scan({ lt: enc('key0000') }), []);
  t.deepEqual(h.scan({ lte: enc('key') }), []);
  t.deepEqual(h.scan({ lt: enc('\x00') }), []);
  t.deepEqual(h.scan({ gt: enc('key0499'), reverse: true }), []);
  t.deepEqual(h.scan({ lt: enc('key0000'), reverse: true }), []);
  t.deepEqual(h.scan({ lte: enc('key'), reverse: true }), []);
  t.deepEqual(h.scan({ lt: enc('zzz'), reverse: true, limit: 2 }), ['key0499', 'key0498']);
  t.deepEqual(h.scan({ gt: enc('\x00'), limit: 2 }), ['key0000', 'key0001']);
  t.deepEqual(h.scan({ gte: enc('key0499'), lte: enc('key0499') }), ['key0499']);
  t.deepEqual(h.scan({ gt: enc('key0100'), lt: enc('key0100') }), []);
  t.deepEqual(h.scan({ gte: enc('key0300'), lte: enc('key0200') }), []);
  t.deepEqual(h.scan({ limit: 0 }), []);
  t.is(h.scan({ limit: -1 }).length, 500);
});

test('bounds that are prefixes of keys (and keys that are prefixes of each other)', (t) => {
  for (const C of [4, 8, 16]) {
    const h = setup({ chunkSize: C });
    const keys = ['a', 'ab', 'abc', 'abcdefg', 'abcdefgh', 'abcdefghijklmnopq', 'abd', 'b', 'b\x00', 'b\x00\x00', 'ba'];
    h.putAll(keys);
    const sorted = [...keys].sort((x, y) => compareKeys(enc(x), enc(y)));
    t.deepEqual(h.scan(), sorted);
    const bounds = ['a', 'ab', 'abc', 'abcd', 'abcdefg', 'abcdefgh', 'abcdefghi', 'abcdefghijklmnop', 'b', 'b\x00', 'b\x00\x00\x00', 'aa', 'abz', '\x00', 'c'];
    for (const b of bounds) {
      const B = enc(b);
      const cmp = (k: string): number => compareKeys(enc(k), B);
      t.deepEqual(h.scan({ gt: B }), sorted.filter((k) => cmp(k) > 0), `C=${C} gt ${JSON.stringify(b)}`);
      t.deepEqual(h.scan({ gte: B }), sorted.filter((k) => cmp(k) >= 0), `C=${C} gte ${JSON.stringify(b)}`);
      t.deepEqual(h.scan({ lt: B }), sorted.filter((k) => cmp(k) < 0), `C=${C} lt ${JSON.stringify(b)}`);
      t.deepEqual(h.scan({ lte: B }), sorted.filter((k) => cmp(k) <= 0), `C=${C} lte ${JSON.stringify(b)}`);
      t.deepEqual(h.scan({ gt: B, reverse: true }), sorted.filter((k) => cmp(k) > 0).reverse());
      t.deepEqual(h.scan({ lte: B, reverse: true }), sorted.filter((k) => cmp(k) <= 0).reverse());
      t.deepEqual(h.scan({ gte: B, reverse: true, limit: 1 }), sorted.filter((k) => cmp(k) >= 0).reverse().slice(0, 1));
      t.deepEqual(h.scan({ lt: B, reverse: true, limit: 2 }), sorted.filter((k) => cmp(k) < 0).reverse().slice(0, 2));
    }
    for (const k of keys) t.is(h.get(k), k);
    for (const k of ['abcd', 'abcdef', 'abcdefghi', 'b\x00\x00\x00', 'aa']) t.is(h.get(k), undefined);
  }
});

test('reverse scans stay right while keys are removed', (t) => {
  const h = setup({ chunkSize: 4, blockSize: 512 });
  const keys = Array.from({ length: 3000 }, (_, i) => `/data/${i % 17}/item-${i}`);
  h.putAll(keys);
  let live = [...keys].sort((x, y) => compareKeys(enc(x), enc(y)));
  let step = 0;
  while (live.length > 0) {
    // Remove a slice in one batch and every 7th of the rest one by one; check reverse scans.
    const cut = live.filter((_, i) => i % 3 === step % 3);
    const ops = cut.map((k) => ({ key: enc(k), remove: true as const }));
    const res = h.trie.apply(h.root, ops);
    t.is(res.removed, cut.length);
    h.root = res.root;
    t.is(h.trie.apply(h.root, ops).root, h.root, 'removing them again changes nothing');
    const gone = new Set(cut);
    live = live.filter((k) => !gone.has(k));
    for (let i = live.length - 1; i >= 0 && i > live.length - 40; i -= 7) {
      h.del(live[i]!);
      live.splice(i, 1);
    }
    t.deepEqual(h.scan({ reverse: true }), [...live].reverse());
    if (live.length > 10) {
      const mid = live[live.length >> 1]!;
      t.deepEqual(h.scan({ reverse: true, lt: enc(mid), limit: 5 }), live.slice(0, live.length >> 1).reverse().slice(0, 5));
    }
    check(h.trie.core, h.root, { keys: true });
    step++;
    if (live.length < 30) {
      for (const k of live) h.del(k);
      live = [];
    }
  }
  t.is(h.root, null);
});

test('keys sharing a long prefix keep a bounded height (skipped prefix, prefix pieces)', (t) => {
  for (const C of [4, 8]) {
    const h = setup({ chunkSize: C, blockSize: 4096 });
    const prefix = 'p'.repeat(5000);
    const keys: string[] = [];
    for (let i = 0; i < 3000; i++) keys.push(`${prefix}${(i * 7919) % 10007}-${i}`);
    // Two more groups that share long prefixes, and differ in the middle.
    for (let i = 0; i < 300; i++) keys.push(`${'q'.repeat(2000)}${i % 2 ? 'x' : 'y'}${'r'.repeat(1500)}${i}`);
    h.putAll(keys);
    const st = check(h.trie.core, h.root, { keys: true });
    t.is(st.values, keys.length);
    t.true(st.pieces > 0, 'long prefixes live in prefix pieces');
    // Without skipped prefixes a 5000-byte shared prefix would cost 5000 / (C - 1) levels.
    t.true(st.trieHeight <= 6, `trie height ${st.trieHeight} (C=${C})`);
    t.true(st.height <= 10, `height ${st.height} (C=${C})`);
    for (const k of keys.slice(0, 50)) t.is(h.get(k), k);
  }
});

test('many small sub-tries share blocks', (t) => {
  const h = setup({ chunkSize: 8 });
  // 2000 pairs of keys that share their first 7 bytes: every pair is a sub-trie of two entries.
  const keys: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const p = i.toString(36).padStart(7, '0');
    keys.push(`${p}/left`, `${p}/right`);
  }
  const res = h.putAll(keys);
  const st = check(h.trie.core, h.root, { keys: true });
  t.is(st.trieNodes, 2001);
  t.true(res.writtenBlocks * 15 < st.trieNodes, `${st.trieNodes} trie nodes in ${res.writtenBlocks} blocks`);
  t.true(res.writtenBytes > 0.8 * res.writtenBlocks * 4096, 'blocks are well filled');
});

test('sequential single inserts pack leaves full', (t) => {
  const h = setup({ chunkSize: 8 });
  for (let i = 0; i < 4000; i++) h.put(`user:${String(i).padStart(9, '0')}`);
  const st = check(h.trie.core, h.root, { keys: true });
  const cap = Math.floor((4096 - 16) / 16);
  t.true(st.leaves <= Math.ceil(4000 / cap) + 2, `${st.leaves} leaves for 4000 keys (capacity ${cap})`);
});

test('a chain of keys that are prefixes of each other', (t) => {
  const h = setup({ chunkSize: 4 });
  const keys = Array.from({ length: 400 }, (_, i) => 'a'.repeat(i + 1));
  h.putAll(keys.filter((_, i) => i % 2 === 0));
  for (const k of keys.filter((_, i) => i % 2 === 1)) h.put(k);
  t.deepEqual(h.scan(), keys);
  t.deepEqual(h.scan({ reverse: true, lt: enc('a'.repeat(200)), limit: 3 }), [199, 198, 197].map((n) => 'a'.repeat(n)));
  const st = check(h.trie.core, h.root, { keys: true });
  // The trie cannot do better than one level per chunk of the longest key here (every chunk
  // boundary separates keys): 400 / (C - 1) levels.
  t.true(st.trieHeight <= Math.ceil(400 / 3) + 1);
  for (const k of keys) h.del(k);
  t.is(h.root, null);
});

test('a trie too deep for a batch to walk reports TOO_DEEP and stays unchanged', (t) => {
  // 2000 keys 'a', 'aa', ... up to 6000 bytes at chunk size 4: one trie level per chunk.
  const h = setup({ chunkSize: 4 });
  h.putAll(Array.from({ length: 2000 }, (_, i) => new Uint8Array(3 * i + 1).fill(0x61)));
  const root = h.root;
  const blocks = h.store.blocksWritten;
  t.is(code(t, () => h.put(new Uint8Array(5990).fill(0x61))), 'TOO_DEEP');
  t.is(h.root, root);
  t.is(h.store.blocksWritten, blocks);
  t.is(check(h.trie.core, root).values, 2000);
});

test('a KeyReader that contradicts the index is reported as CORRUPT', (t) => {
  const h = setup();
  h.putAll(['alphabetic', 'beta']);
  const liar = new HBTrie({ store: h.store, keyReader: () => enc('zzzzzz'), chunkSize: 8 });
  // 'alphabet soup' shares its first chunk with 'alphabetic': the trie must read that key.
  t.is(code(t, () => liar.put(h.root, enc('alphabet soup'), 1)), 'CORRUPT');
  t.is(liar.get(h.root, enc('alphabetic')), undefined, 'get confirms through the KeyReader');
  t.is(typeof liar.find(h.root, enc('alphabetic')), 'number', 'find returns the candidate unconfirmed');
});

test('cursors, lookups and batches stay right while a tiny cache reuses its memory', (t) => {
  for (const [C, blockSize] of [
    [4, 512],
    [8, 4096],
  ] as const) {
    const records: Uint8Array[] = [];
    const store = new MemoryNodeStore({ blockSize });
    // The smallest cache (four slabs of one block): nodes are evicted, moved and reloaded all
    // the time, and a batch's blocks do not fit in it.
    const trie = new HBTrie({ store, keyReader: (v) => records[v]!, chunkSize: C, cacheBytes: 1 });
    const keys = new Set<string>();
    for (let i = 0; i < 3000; i++) keys.add(i % 3 === 0 ? `/d${i % 17}/e${i % 5}/f${i}` : `k${(i * 7919) % 100003}-${'x'.repeat(i % 40)}`);
    const sorted = [...keys].map(enc).sort(compareKeys);
    const root = trie.apply(null, sorted.map((key) => {
      records.push(key);
      return { key, value: records.length - 1 };
    })).root;
    const want = sorted.map((k) => records.indexOf(k));
    const cursors = [trie.range(root), trie.range(root, { reverse: true })];
    const got: number[][] = [[], []];
    let other = root;
    for (let i = 0; i < sorted.length; i++) {
      for (let c = 0; c < 2; c++) got[c]!.push(cursors[c]!.next().value as number);
      // Meanwhile: lookups, batches on another root, and a cleared cache now and then.
      const k = sorted[(i * 31) % sorted.length]!;
      if (trie.get(root, k) !== records.indexOf(k)) t.fail(`get after ${i} steps (C=${C})`);
      if (i % 97 === 0) {
        const key = enc(`new${i}`);
        records.push(key);
        other = trie.put(other, key, records.length - 1).root;
      }
      if (i % 401 === 0) trie.clearCache();
    }
    for (let c = 0; c < 2; c++) t.true(cursors[c]!.next().done);
    t.deepEqual(got[0], want, `forward scan (C=${C})`);
    t.deepEqual(got[1], [...want].reverse(), `reverse scan (C=${C})`);
    t.is(check(trie.core, root, { keys: true }).values, sorted.length);
    t.is(check(trie.core, other, { keys: true }).values, sorted.length + Math.ceil(sorted.length / 97));
  }
});

test('old roots stay readable and unchanged (copy-on-write)', (t) => {
  const h = setup({ chunkSize: 4, blockSize: 1024 });
  const snaps: { root: number | null; scan: string[]; bytes: Map<number, Uint8Array> }[] = [];
  const nodeBytes = (root: number | null): Map<number, Uint8Array> => {
    const out = new Map<number, Uint8Array>();
    for (const [addr, size] of collectNodes(h.trie.core, root)) out.set(addr, h.store.read(addr).slice(0, size));
    return out;
  };
  let n = 0;
  for (let round = 0; round < 12; round++) {
    const keys = Array.from({ length: 300 }, () => `/r${n % 5}/k${(n++ * 7) % 1000}`);
    h.putAll([...new Set(keys)]);
    const all = h.scan();
    const victims = all.filter((_, i) => i % (3 + (round % 4)) === 0);
    h.root = h.trie.apply(h.root, victims.sort((x, y) => compareKeys(enc(x), enc(y))).map((k) => ({ key: enc(k), remove: true as const }))).root;
    if (round % 2 === 0) snaps.push({ root: h.root, scan: h.scan(), bytes: nodeBytes(h.root) });
  }
  // Everything goes away in the end.
  for (const k of h.scan()) h.del(k);
  t.is(h.root, null);
  const fresh = new HBTrie({ store: h.store, keyReader: (v) => h.records[v]!, chunkSize: 4 });
  for (const s of snaps) {
    t.deepEqual([...fresh.range(s.root)].map((v) => dec(h.records[v]!)), s.scan);
    for (const [addr, bytes] of s.bytes) t.deepEqual(h.store.read(addr).subarray(0, bytes.length), bytes, `node ${addr} changed`);
    for (const k of s.scan.slice(0, 30)) {
      const v = fresh.get(s.root, enc(k));
      t.is(v === undefined ? undefined : dec(h.records[v]!), k);
    }
    check(fresh.core, s.root, { keys: true });
  }
});
