import test from 'ava';
import { open, Prng } from './helpers/engine.js';
import { scaled, testImage } from './helpers/test-image.js';
import type { RangeOptions } from '../src/index.js';

/** Keys over a tiny alphabet, so that bounds are often prefixes of keys and runs collide. */
function smallKey(rng: Prng): Uint8Array {
  const alphabet = [0x00, 0x61, 0x62, 0xff];
  return Uint8Array.from({ length: 1 + rng.int(4) }, () => alphabet[rng.int(alphabet.length)]!);
}

const hex = (k: Uint8Array): string => Buffer.from(k).toString('hex');
const cmp = (a: Uint8Array, b: Uint8Array): number => Buffer.compare(a, b);

function modelRange(model: Map<string, number>, o: RangeOptions): string[] {
  let keys = [...model.keys()].map((h) => Buffer.from(h, 'hex')).sort(cmp);
  const b = (k: unknown): Buffer => Buffer.from(k as Uint8Array);
  if (o.gt) keys = keys.filter((k) => cmp(k, b(o.gt)) > 0);
  else if (o.gte) keys = keys.filter((k) => cmp(k, b(o.gte)) >= 0);
  if (o.lt) keys = keys.filter((k) => cmp(k, b(o.lt)) < 0);
  else if (o.lte) keys = keys.filter((k) => cmp(k, b(o.lte)) <= 0);
  if (o.prefix) keys = keys.filter((k) => k.subarray(0, (o.prefix as Uint8Array).length).equals(b(o.prefix)));
  if (o.reverse) keys.reverse();
  return keys.slice(0, o.limit ?? Infinity).map((k) => `${hex(k)}=${model.get(hex(k))}`);
}

// FORESTFS_TEST_SCALE shortens the run on slow devices (fewer steps populate fewer keys).
const STEPS = scaled(3000, 300);

test('ranges agree with a model over deleted runs, prefix bounds, empty ranges, reverse order and keys in both the WAL and the index', async (t) => {
  const rng = new Prng(4242);
  const db = await open(await testImage(32 << 20).open(), { walThreshold: 1_000_000 });
  const s = db.store();
  const model = new Map<string, number>();
  let queries = 0;
  for (let step = 0; step < STEPS; step++) {
    const r = rng.int(100);
    if (r < 65) {
      const k = smallKey(rng);
      await s.put(k, step);
      model.set(hex(k), step);
    } else if (r < 82) {
      // Deletes in runs: whole neighbourhoods of keys disappear.
      const k = smallKey(rng);
      const run = [...model.keys()].map((h) => Buffer.from(h, 'hex')).filter((x) => cmp(x, k) >= 0).sort(cmp).slice(0, rng.int(6));
      await Promise.all([k, ...run].map((x) => s.del(x)));
      for (const x of [k, ...run]) model.delete(hex(x));
    } else if (r < 86) {
      await db.checkpoint(); // what was in the WAL moves into the index (deletions as tombstones)
    }
    for (let q = 0; q < 3; q++) {
      const o: RangeOptions = {};
      const pick = rng.int(6);
      if (pick & 1) o[rng.bool() ? 'gt' : 'gte'] = smallKey(rng);
      if (pick & 2) o[rng.bool() ? 'lt' : 'lte'] = smallKey(rng);
      if (pick === 4 || rng.int(5) === 0) o.prefix = smallKey(rng).subarray(0, 1 + rng.int(2));
      if (rng.bool()) o.reverse = true;
      if (rng.int(3) === 0) o.limit = rng.int(6);
      const got = [...s.range(o)].map(([k, v]) => `${hex(k as Uint8Array)}=${v}`);
      const want = modelRange(model, o);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        const show = Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v instanceof Uint8Array ? hex(v) : v]));
        return t.fail(`step ${step}: range(${JSON.stringify(show)})\n got ${got.join(' ')}\nwant ${want.join(' ')}`);
      }
      queries++;
    }
  }
  t.log(`${queries} range queries checked; ${model.size} keys at the end`);
  t.true(model.size > Math.min(50, STEPS / 10), 'the key space stayed populated');
  await db.close();
});

test('targeted iterator edges', async (t) => {
  const db = await open(await testImage(16 << 20).open(), { walThreshold: 1000 });
  const s = db.store();
  t.deepEqual([...s.range()], [], 'empty store');
  for (const k of ['a', 'ab', 'abc', 'abd', 'b', 'ba']) await s.put(k, k);
  await db.checkpoint();
  // A key in the index deleted in the WAL; a key deleted in the index put again in the WAL.
  await s.del('abc');
  await s.del('b');
  await db.checkpoint();
  await s.put('b', 'again');
  await s.del('ab');
  await s.put('abd', 'new');
  const keys = (o: RangeOptions): unknown[] => [...s.keys(o)];
  t.deepEqual(keys({}), ['a', 'abd', 'b', 'ba']);
  t.deepEqual(keys({ reverse: true }), ['ba', 'b', 'abd', 'a']);
  t.deepEqual(keys({ prefix: 'ab' }), ['abd']);
  t.deepEqual(keys({ gt: 'ab', lt: 'abd' }), [], 'only deleted keys in between');
  t.deepEqual(keys({ gte: 'ab', lte: 'abd' }), ['abd']);
  t.deepEqual(keys({ gt: 'a', reverse: true, limit: 2 }), ['ba', 'b']);
  t.deepEqual(keys({ gte: 'b', lt: 'b' }), [], 'gte = lt');
  t.deepEqual(keys({ gt: 'z' }), []);
  t.deepEqual(keys({ gt: 'b', lt: 'a' }), [], 'inverted bounds');
  t.deepEqual(keys({ prefix: 'zz' }), []);
  t.deepEqual(keys({ limit: 0 }), []);
  t.is(s.get('abd'), 'new');
  t.is(s.get('abc'), undefined);
  t.false(s.has('ab'));
  t.is(s.get('b'), 'again');
  // Binary prefix of 0xff bytes (no successor).
  await s.put(Uint8Array.of(0xff, 0xff), 1);
  await s.put(Uint8Array.of(0xff, 0xff, 0x00), 2);
  t.deepEqual([...s.keys({ prefix: Uint8Array.of(0xff, 0xff) })].map((k) => hex(k as Uint8Array)), ['ffff', 'ffff00']);
  await db.close();
});

test('a live range read lazily from the WAL does not see writes that commit while it is open', async (t) => {
  const db = await open(await testImage(16 << 20).open(), { walThreshold: 1_000_000 });
  const s = db.store();
  const key = (i: number) => `k${String(i).padStart(5, '0')}`;
  // Written in descending order: each new key lands before the others, so the WAL drops its
  // kept key order and sorts again on demand (the other path through WalIndex.set).
  const writes: Promise<number>[] = [];
  for (let i = 2999; i >= 0; i--) writes.push(s.put(key(i), i));
  await Promise.all(writes);
  for (const reverse of [false, true]) {
    const want = [...s.range({ reverse })].map(([k, v]) => `${String(k)}=${String(v)}`);
    const it = s.range({ reverse });
    const got: string[] = [];
    for (let n = 0; n < 5; n++) {
      const r = it.next();
      if (!r.done) got.push(`${String(r.value[0])}=${String(r.value[1])}`);
    }
    // Meanwhile: new keys between the old ones, overwrites and deletes ahead of the iterator.
    const more: Promise<number>[] = [];
    for (let i = 0; i < 3000; i += 7) more.push(s.put(`${key(i)}x`, -i));
    for (let i = 10; i < 3000; i += 11) more.push(s.put(key(i), -1));
    for (let i = 20; i < 3000; i += 13) more.push(s.del(key(i)));
    await Promise.all(more);
    for (const [k, v] of it) got.push(`${String(k)}=${String(v)}`);
    t.deepEqual(got, want, `reverse ${reverse}: the iterator kept the state of its call`);
    // Restore for the next round.
    const undo: Promise<number>[] = [];
    for (let i = 0; i < 3000; i += 7) undo.push(s.del(`${key(i)}x`));
    for (let i = 0; i < 3000; i++) if (i % 11 === 10 || i % 13 === 7) undo.push(s.put(key(i), i));
    await Promise.all(undo);
  }
  await db.close();
});

test('long ranges agree with a model: read-ahead across bursts, limits, reverse, tombstones, a WAL of thousands, records in and out of the block cache', async (t) => {
  // Ranges read the index AHEAD (16) entries at a time and touch WAL entries 16 at a time;
  // the WAL's first range sorts thousands of keys written out of order (key-sort.ts).
  for (const cacheSize of ['128MiB', '64KiB']) {
    const rng = new Prng(cacheSize.length);
    const db = await open(await testImage(64 << 20).open(), { walThreshold: 1_000_000, cacheSize });
    const s = db.store();
    const model = new Map<string, number>();
    const key = (): string => (rng.int(5) === 0 ? `path/${rng.int(30)}/${rng.int(200)}.txt` : `user:${String(rng.int(4000)).padStart(6, '0')}`);
    let queries = 0;
    for (let step = 0; step < scaled(12, 4); step++) {
      // Three commits between ranges: a key rewritten in a later one is in the WAL's
      // unsorted writes twice, and the newest must win.
      for (let c = 0; c < 3; c++) {
        const writes: Promise<number>[] = [];
        for (let i = 0; i < 200; i++) {
          const k = key();
          const v = step * 1000 + c * 200 + i;
          if (rng.int(6) === 0) {
            writes.push(s.del(k));
            model.delete(k);
          } else {
            writes.push(s.put(k, v));
            model.set(k, v);
          }
        }
        await Promise.all(writes);
      }
      if (step % 3 === 2) await db.checkpoint();
      const sorted = [...model.keys()].sort();
      for (let q = 0; q < 25; q++) {
        const o: RangeOptions = {};
        if (rng.bool()) o.gte = key();
        if (rng.bool()) o.lt = key();
        if (rng.bool()) o.reverse = true;
        const limits = [undefined, 1, 2, 15, 16, 17, 31, 33, 200];
        const limit = limits[rng.int(limits.length)];
        if (limit !== undefined) o.limit = limit;
        let want = sorted.filter((k) => (o.gte === undefined || k >= (o.gte as string)) && (o.lt === undefined || k < (o.lt as string)));
        if (o.reverse) want.reverse();
        want = want.slice(0, o.limit ?? Infinity);
        const got = [...s.range(o)];
        const gotKeys = got.map(([k]) => k as string);
        if (JSON.stringify(gotKeys) !== JSON.stringify(want)) {
          return t.fail(`cache ${cacheSize}, step ${step}: range(${JSON.stringify(o)}) gave ${got.length} keys, want ${want.length}; first difference at ${gotKeys.findIndex((k, i) => k !== want[i])}`);
        }
        for (const [k, v] of got) if (v !== model.get(k as string)) return t.fail(`cache ${cacheSize}, step ${step}: ${String(k)} = ${String(v)}, want ${model.get(k as string)}`);
        queries++;
      }
    }
    t.log(`cache ${cacheSize}: ${queries} ranges checked over ${model.size} keys; block cache hit rate ${db.stats().cache.hitRate.toFixed(2)}`);
    await db.close();
  }
  t.pass();
});

test('the WAL put in key order while the writer is idle: ranges opened before and after agree with a model; scans count their cache hits', async (t) => {
  const rng = new Prng(77);
  const db = await open(await testImage(64 << 20).open(), { walThreshold: 1_000_000 });
  const s = db.store();
  const wal = db.storeState('default').wal;
  const model = new Map<string, number>();
  const key = (): string => `k${String(rng.int(20000)).padStart(6, '0')}`;
  const want = (o: RangeOptions): string[] => {
    let keys = [...model.keys()].sort().filter((k) => (o.gte === undefined || k >= (o.gte as string)) && (o.lt === undefined || k < (o.lt as string)));
    if (o.reverse) keys.reverse();
    return keys.map((k) => `${k}=${model.get(k)}`);
  };
  /** One commit of random puts and deletes (some keys twice). */
  const commit = async (base: number): Promise<void> => {
    const writes: Promise<number>[] = [];
    for (let i = 0; i < 1500; i++) {
      const k = key();
      if (rng.int(8) === 0) {
        writes.push(s.del(k));
        model.delete(k);
      } else {
        writes.push(s.put(k, base + i));
        model.set(k, base + i);
      }
    }
    await Promise.all(writes);
  };
  const idle = (): Promise<void> => new Promise((r) => setImmediate(r));
  const pairs = (it: Iterable<readonly [unknown, unknown]>): string[] => [...it].map(([k, v]) => `${String(k)}=${String(v)}`);
  let ordered = 0;
  for (let step = 0; step < scaled(16, 6); step++) {
    await commit(step * 10000);
    if (step % 2 === 0) {
      if (wal.wantsOrdering) ordered++;
      await idle();
      t.false(wal.wantsOrdering, `step ${step}: still out of order after an idle turn`);
    }
    const o: RangeOptions = {};
    if (rng.bool()) o.gte = key();
    if (rng.bool()) o.reverse = true;
    t.deepEqual(pairs(s.range(o)), want(o), `step ${step}: a range`);
    // An iterator open while another commit's writes are put in order under it.
    const expected = want(o);
    const it = s.range(o)[Symbol.iterator]();
    const got: string[] = [];
    for (let n = 0; n < 40; n++) {
      const r = it.next();
      if (r.done) break;
      got.push(`${String(r.value[0])}=${String(r.value[1])}`);
    }
    await commit(step * 10000 + 5000);
    if (wal.wantsOrdering) ordered++;
    await idle();
    t.false(wal.wantsOrdering, `step ${step}: still out of order after an idle turn, a range open`);
    got.push(...pairs({ [Symbol.iterator]: () => it }));
    t.deepEqual(got, expected, `step ${step}: an iterator open across the idle ordering`);
    t.deepEqual(pairs(s.range(o)), want(o), `step ${step}: a range after it`);
    if (step % 3 === 2) await db.checkpoint();
  }
  t.true(ordered >= 6, `the WAL wanted ordering at ${ordered} idle turns`);
  // A scan reads indexed records through the blocks its read-ahead found: each is a cache hit.
  await db.checkpoint();
  const c0 = db.stats().cache;
  let n = 0;
  for (const _ of s.range({})) n++;
  const c1 = db.stats().cache;
  t.is(n, model.size);
  t.true(c1.hits - c0.hits >= n, `${c1.hits - c0.hits} hits for ${n} records`);
  t.is(c1.misses, c0.misses);
  await db.close();
});
