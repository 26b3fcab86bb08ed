// The read paths' fast code: ranges merged from the WAL and the index (entries built straight
// from record bytes), values and keys decoded in place, the block cache, records verified
// once per cached block, iterators registered for collection only when left open, and lookup
// keys written into reused arrays.
import test, { type ExecutionContext } from 'ava';
import { BlockCache } from '../src/engine/block-cache.js';
import { bufferCopy, decodeValueAt, keyAt, VT_BUFFER, VT_STRING, VT_UINT8ARRAY } from '../src/engine/codec.js';
import { decodeRecord, encodeRecord, FLAG_STRING_KEY, recordSize } from '../src/engine/record.js';
import { ForestError, MemoryDevice, open, Prng } from './helpers/engine.js';
import type { Key, RangeOptions, Value } from '../src/index.js';

const code = (c: string) => ({ instanceOf: ForestError, code: c });

/** A value of every kind the engine stores, chosen by i. */
function valueFor(i: number, gen: number): Value {
  switch (i % 8) {
    case 0: return Buffer.from(`buf-${i}-${gen}`);
    case 1: return new Uint8Array([i & 0xff, gen & 0xff, 7]);
    case 2: return `str-${i}-${gen}-ü`;
    case 3: return { i, gen, nested: { s: 'x' } };
    case 4: return [i, gen, 'a'];
    case 5: return i * 1.5 + gen;
    case 6: return (i + gen) % 2 === 0;
    default: return null;
  }
}

function sameValue(t: { deepEqual(a: unknown, b: unknown, m?: string): void; true(x: boolean, m?: string): void }, got: unknown, want: Value, what: string): void {
  if (Buffer.isBuffer(want)) t.true(Buffer.isBuffer(got), `${what}: a Buffer comes back as a Buffer`);
  else if (want instanceof Uint8Array) t.true(got instanceof Uint8Array && !Buffer.isBuffer(got), `${what}: a Uint8Array comes back as a plain Uint8Array`);
  if (want instanceof Uint8Array) t.deepEqual(Buffer.from(got as Uint8Array), Buffer.from(want), what);
  else t.deepEqual(got, want, what);
}

const keyName = (i: number): string => `k:${String(i).padStart(4, '0')}`;

function modelRange(model: Map<string, Value>, o: RangeOptions): [string, Value][] {
  let keys = [...model.keys()].sort();
  if (o.gte !== undefined) keys = keys.filter((k) => k >= (o.gte as string));
  if (o.gt !== undefined) keys = keys.filter((k) => k > (o.gt as string));
  if (o.lt !== undefined) keys = keys.filter((k) => k < (o.lt as string));
  if (o.lte !== undefined) keys = keys.filter((k) => k <= (o.lte as string));
  if (o.reverse) keys.reverse();
  return keys.slice(0, o.limit ?? Infinity).map((k) => [k, model.get(k)!]);
}

function check(t: ExecutionContext, got: Iterable<[Key, Value]>, want: [string, Value][], what: string): void {
  const list = [...got];
  t.deepEqual(list.map(([k]) => k), want.map(([k]) => k), `${what}: keys`);
  for (let i = 0; i < Math.min(list.length, want.length); i++) sameValue(t, list[i]![1], want[i]![1], `${what}: value of ${want[i]![0]}`);
}

test('ranges over index only, WAL only and both, forward and reverse, live and in snapshots, agree with a model', async (t) => {
  const db = await open(new MemoryDevice(new Uint8Array(32 << 20)), { walThreshold: 1_000_000 });
  const s = db.store('r');
  const model = new Map<string, Value>();
  for (let i = 0; i < 400; i += 2) {
    const v = valueFor(i, 0);
    model.set(keyName(i), v);
    void s.put(keyName(i), v);
  }
  await db.flushed;
  await db.checkpoint();
  t.is(db.stats().walEntries, 0, 'everything is in the index');
  const rng = new Prng(77);
  const queries = (label: string, m: Map<string, Value>, reader: { range(o?: RangeOptions): Iterable<[Key, Value]> }): void => {
    for (let q = 0; q < 60; q++) {
      const o: RangeOptions = { reverse: q % 2 === 1 };
      const a = rng.int(420);
      const b = a + rng.int(100);
      if (q % 3 !== 0) o.gte = keyName(a);
      if (q % 4 !== 0) o.lt = keyName(b);
      if (q % 5 === 0) o.limit = 1 + rng.int(12);
      check(t, reader.range(o), modelRange(m, o), `${label} ${JSON.stringify(o)}`);
    }
    check(t, reader.range(), modelRange(m, {}), `${label} full`);
    check(t, reader.range({ reverse: true }), modelRange(m, { reverse: true }), `${label} full reverse`);
  };
  queries('index only', model, s);
  const snapIndexOnly = db.snapshot();
  const frozenIndexOnly = new Map(model);

  // Now WAL entries inside the ranges: new keys between the indexed ones, overwrites (of
  // other types) and deletions of indexed keys.
  for (let i = 1; i < 400; i += 6) {
    const v = valueFor(i + 3, 1);
    model.set(keyName(i), v);
    void s.put(keyName(i), v);
  }
  for (let i = 0; i < 400; i += 10) {
    const v = valueFor(i + 1, 2);
    model.set(keyName(i), v);
    void s.put(keyName(i), v);
  }
  for (let i = 4; i < 400; i += 14) {
    model.delete(keyName(i));
    void s.del(keyName(i));
  }
  await db.flushed;
  t.true(db.stats().walEntries > 0, 'the WAL holds entries in the ranges');
  queries('WAL and index', model, s);
  queries('snapshot taken when all was indexed', frozenIndexOnly, snapIndexOnly.store('r'));
  const snapBoth = db.snapshot();
  const frozenBoth = new Map(model);

  // Keys beyond everything indexed: ranges there are WAL-only.
  for (let i = 500; i < 540; i++) {
    const v = valueFor(i, 3);
    model.set(keyName(i), v);
    void s.put(keyName(i), v);
  }
  await db.flushed;
  check(t, s.range({ gte: keyName(500) }), modelRange(model, { gte: keyName(500) }), 'WAL only');
  check(t, s.range({ gte: keyName(500), reverse: true, limit: 7 }), modelRange(model, { gte: keyName(500), reverse: true, limit: 7 }), 'WAL only, reverse');
  queries('snapshot with WAL and index', frozenBoth, snapBoth.store('r'));
  await db.checkpoint();
  queries('after the WAL is flushed', model, s);
  queries('snapshot with WAL and index, after the flush', frozenBoth, snapBoth.store('r'));
  for (const [k, v] of model) sameValue(t, s.get(k), v, `get ${k}`);
  t.deepEqual([...s.keys({ gte: keyName(10), limit: 5 })], modelRange(model, { gte: keyName(10), limit: 5 }).map(([k]) => k));
  snapIndexOnly.close();
  snapBoth.close();
  await db.close();
});

test('raw keys come back as Buffers, string keys as strings, and returned bytes are private copies', async (t) => {
  const db = await open(new MemoryDevice(new Uint8Array(16 << 20)), { walThreshold: 1_000_000 });
  const s = db.store();
  await s.put(new Uint8Array([1, 2, 3]), Buffer.from('raw'));
  await s.put('\uFEFFbom', Buffer.from('bom'));
  await s.put('ü-key', new Uint8Array([9, 9]));
  await db.checkpoint();
  await s.put(new Uint8Array([1, 2, 4]), Buffer.from('wal'));
  for (const pass of ['first', 'again']) {
    const all = [...s.range()];
    t.deepEqual(all.map(([k]) => (typeof k === 'string' ? k : `raw:${Buffer.from(k).toString('hex')}`)), ['raw:010203', 'raw:010204', 'ü-key', '\uFEFFbom'], pass); // UTF-8 byte order: C3 BC < EF BB BF
    t.true(Buffer.isBuffer(all[0]![0]) && Buffer.isBuffer(all[1]![0]));
    // Scribble over everything returned: nothing stored changes.
    for (const [k, v] of all) {
      if (typeof k !== 'string') k.fill(0xee);
      (v as Uint8Array).fill(0xee);
    }
    (s.get(new Uint8Array([1, 2, 3])) as Buffer).fill(0xee);
  }
  t.deepEqual(s.get(new Uint8Array([1, 2, 3])), Buffer.from('raw'));
  t.deepEqual([...s.range()].map(([, v]) => Buffer.from(v as Uint8Array).toString('latin1')), ['raw', 'wal', '\x09\x09', 'bom']);
  await db.close();
});

test('an iterator left open keeps its view across writes, flushes and awaits; return() ends it', async (t) => {
  const db = await open(new MemoryDevice(new Uint8Array(16 << 20)), { walThreshold: 1_000_000 });
  const s = db.store();
  for (let i = 0; i < 50; i++) void s.put(keyName(i), i);
  await db.flushed;
  await db.checkpoint();
  for (let i = 50; i < 60; i++) void s.put(keyName(i), i);
  await db.flushed;
  const it = s.range({ gte: keyName(40) });
  const notStarted = s.range();
  const first = it.next();
  t.deepEqual(first.value, [keyName(40), 40]);
  // Across an await (the microtask that registers open iterators runs), writes, a flush.
  await new Promise((r) => setTimeout(r, 5));
  for (let i = 40; i < 60; i++) void s.put(keyName(i), -i);
  await db.flushed;
  await db.checkpoint();
  const rest = [...it].map(([k, v]) => `${String(k)}=${String(v)}`);
  t.deepEqual(rest, Array.from({ length: 19 }, (_, j) => `${keyName(41 + j)}=${41 + j}`));
  t.true(it.next().done, 'done stays done');
  t.deepEqual(notStarted.return!(), { value: undefined, done: true });
  t.true(notStarted.next().done, 'return() before the first next() ends it');
  t.deepEqual([...s.range({ gte: keyName(58) })], [[keyName(58), -58], [keyName(59), -59]]);
  // Many iterators made and abandoned in one synchronous run are fine too.
  for (let i = 0; i < 5000; i++) s.range({ gte: keyName(i % 60) }).next();
  await new Promise((r) => setTimeout(r, 1));
  t.is(s.get(keyName(1)), 1);
  await db.close();
});

test('a damaged record reached by a scan or a seek is CORRUPT, and the iterator then ends', async (t) => {
  const image = new Uint8Array(8 << 20);
  let db = await open(new MemoryDevice(image));
  for (let i = 0; i < 20; i++) void db.store().put(keyName(i), `value-${i}-precious`);
  await db.close();
  const at = Buffer.from(image.buffer).indexOf(Buffer.from('value-7-precious'));
  t.true(at > 0);
  image[at + 2]! ^= 0x04;
  db = await open(new MemoryDevice(image));
  const s = db.store();
  for (const o of [{}, { gte: keyName(5), limit: 5 }, { reverse: true }]) {
    const it = s.range(o);
    const seen: Key[] = [];
    t.throws(() => {
      for (const [k] of it) seen.push(k);
    }, code('CORRUPT'));
    t.false(seen.includes(keyName(7)));
    t.true(it.next().done);
    // Read again: still detected (the record was not remembered as verified).
    t.throws(() => [...s.range(o)], code('CORRUPT'));
  }
  t.throws(() => s.get(keyName(7)), code('CORRUPT'));
  t.is(s.get(keyName(8)), 'value-8-precious');
  await db.close();
});

test('BlockCache: answers are the bytes last set; bounded by bytes; blocks in use stay', (t) => {
  const bs = 4096;
  const c = new BlockCache(8 * bs, bs);
  const blk = (n: number): Uint8Array => new Uint8Array(bs).fill(n & 0xff);
  t.is(c.get(3), undefined);
  c.set(3, blk(3));
  t.is(c.get(3)![0], 3);
  c.set(3, blk(33)); // replaced in place
  t.is(c.get(3)![0], 33);
  t.is(c.size, bs);
  // Far apart block numbers, beyond 2^31 too.
  const far = [5000, 2 ** 31 + 7, 2 ** 33 + 4095];
  for (const b of far) c.set(b, blk(b % 251));
  for (const b of far) t.is(c.get(b)![0], b % 251);
  t.is(c.peek(far[1]!)![0], far[1]! % 251);
  // Fill beyond the budget while block 3 is read each time: it stays, the bound holds.
  for (let b = 100; b < 140; b++) {
    c.set(b, blk(b));
    t.truthy(c.get(3));
    t.true(c.size <= 8 * bs);
  }
  t.is(c.get(3)![0], 33);
  let present = 0;
  for (let b = 100; b < 140; b++) if (c.peek(b)) present++;
  t.true(present >= 4 && present <= 7, `${present} of the newest blocks present`);
  for (let b = 100; b < 140; b++) {
    const got = c.peek(b);
    if (got) t.is(got[0], b & 0xff);
  }
  const hits = c.hits;
  const misses = c.misses;
  c.get(99);
  t.is(c.misses, misses + 1);
  t.is(c.hits, hits);
  // A written frame: its blocks are views of one copy.
  const frame = new Uint8Array(3 * bs).map((_, i) => Math.floor(i / bs) + 1);
  c.setWritten(200, frame);
  frame.fill(0);
  t.deepEqual([c.get(200)![0], c.get(201)![0], c.get(202)![0]], [1, 2, 3]);
  c.clear();
  t.is(c.size, 0);
  t.is(c.get(3), undefined);
  c.set(3, blk(4));
  t.is(c.get(3)![0], 4);
});

test('records in a cached block read from the device: a damaged one is refused every time, a sound one decodes', (t) => {
  const bs = 4096;
  const c = new BlockCache(16 * bs, bs);
  const block = new Uint8Array(bs);
  const key = Buffer.from('a-key');
  const value = Buffer.from('a value of some length, over sixty-four bytes so that the native checksum runs');
  const size = encodeRecord(block, 64, { kind: 1, valueType: VT_BUFFER, flags: FLAG_STRING_KEY, storeId: 1, seq: 5, key, value });
  t.is(size, recordSize(key.length, value.length));
  encodeRecord(block, 512, { kind: 1, valueType: VT_BUFFER, flags: 0, storeId: 1, seq: 6, key, value });
  block[512 + 30]! ^= 1;
  c.set(9, block);
  const cached = c.get(9)!;
  for (let round = 0; round < 3; round++) {
    const r = decodeRecord(cached, 64, 'img', 64);
    t.is(r.seq, 5);
    t.deepEqual(Buffer.from(r.key), key);
    t.deepEqual(Buffer.from(r.value), value);
    t.is(keyAt(r.buf, r.keyAt, r.valueAt, r.flags), 'a-key');
    t.deepEqual(decodeValueAt(r.valueType, r.buf, r.valueAt, r.valueEnd), value);
    t.throws(() => decodeRecord(cached, 512, 'img', 512), { message: /checksum/ });
  }
  // The same bytes outside the cache are verified each time.
  const copy = block.slice();
  t.throws(() => decodeRecord(copy, 512, 'img'), { message: /checksum/ });
  t.is(decodeRecord(copy, 64, 'img').seq, 5);
});

test('bufferCopy and decodeValueAt give private copies of the right type', (t) => {
  const src = new Uint8Array(10000).map((_, i) => i & 0xff);
  for (const [s, e] of [[0, 0], [3, 10], [100, 250], [0, 4095], [0, 4096], [10, 9000]] as const) {
    const b = bufferCopy(src, s, e);
    t.true(Buffer.isBuffer(b));
    t.deepEqual([...b], [...src.subarray(s, e)]);
    b.fill(0);
    t.is(src[s], s & 0xff);
  }
  const u = decodeValueAt(VT_UINT8ARRAY, src, 5, 9) as Uint8Array;
  t.false(Buffer.isBuffer(u));
  t.deepEqual([...u], [5, 6, 7, 8]);
  const str = Buffer.from('\uFEFFhé', 'utf8');
  const bytes = new Uint8Array(str.length + 4);
  bytes.set(str, 2);
  t.is(decodeValueAt(VT_STRING, bytes, 2, 2 + str.length), '\uFEFFhé');
  t.is(keyAt(bytes, 2, 2 + str.length, FLAG_STRING_KEY), '\uFEFFhé');
});

test('get and has with lookup keys: reused arrays per length, byte keys not copied, others as before', async (t) => {
  const db = await open(new MemoryDevice(64 << 20), { walThreshold: 64 });
  const s = db.store();
  const rng = new Prng(21);
  const model = new Map<string, number>();
  // Keys of few lengths (each length's scratch array is reused on every lookup), ASCII and
  // not, byte keys beside them, and keys longer than the scratch arrays go.
  const keyOf = (i: number): Key => {
    switch (i % 5) {
      case 0: return `a${i % 97}`;
      case 1: return `b${String(i % 89).padStart(2, '0')}`;
      case 2: return `ü${i % 13}`;
      case 3: return 'L'.repeat(150) + String(i % 7);
      default: return Uint8Array.of(0xff, i % 11, 0);
    }
  };
  const name = (k: Key) => (typeof k === 'string' ? `s:${k}` : `b:${Buffer.from(k).toString('hex')}`);
  for (let round = 0; round < 40; round++) {
    const p: Promise<number>[] = [];
    for (let j = 0; j < 20; j++) {
      const i = rng.int(2000);
      p.push(s.put(keyOf(i), i));
      model.set(name(keyOf(i)), i);
    }
    await Promise.all(p);
    for (let j = 0; j < 100; j++) {
      const k = keyOf(rng.int(2000));
      const copy = typeof k === 'string' ? k : k.slice();
      t.is(s.get(k), model.get(name(k)), name(k));
      t.is(s.has(k), model.has(name(k)), name(k));
      // A byte key is read, never written.
      if (typeof k !== 'string') t.deepEqual(k, copy);
    }
  }
  await db.close();
});

test('a checkpoint frame too large for the block cache still leaves its records there (its index nodes are cached by the trie)', async (t) => {
  // cacheSize 1 MiB: frames up to 128 KiB are cached whole. Each batch's records (~75 KiB)
  // fit; a checkpoint frame holding a flush of thousands of random keys' leaves does not.
  const db = await open(new MemoryDevice(new Uint8Array(64 << 20)), { cacheSize: '1MiB', walThreshold: 2048 });
  const s = db.store('c');
  const order = new Prng(7).shuffle(Array.from({ length: 16000 }, (_, i) => i));
  let checked = 0;
  for (let b = 0; b < order.length; b += 500) {
    const before = db.stats();
    const batch = order.slice(b, b + 500);
    await Promise.all(batch.map((i) => s.put(`key:${String(i).padStart(6, '0')}`, Buffer.alloc(100, i & 0xff))));
    const after = db.stats();
    if (after.checkpoints === before.checkpoints) continue;
    t.true(after.bytesWritten - before.bytesWritten > 128 * 1024, 'the checkpoint frame is larger than the cache takes whole');
    // The batch's keys are in the index now: each get reads its record through the block cache.
    const misses = after.cache.misses;
    for (const i of batch) t.deepEqual(s.get(`key:${String(i).padStart(6, '0')}`), Buffer.alloc(100, i & 0xff));
    t.is(db.stats().cache.misses, misses, 'no record of the checkpoint commit was read from the device');
    checked++;
  }
  t.true(checked >= 3, `${checked} checkpoints checked`);
  await db.close();
});
