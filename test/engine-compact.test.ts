import test, { type ExecutionContext } from 'ava';
import { FaultyDevice, MemoryDevice, open, Prng, type Database, type Store } from './helpers/engine.js';
import { holdingNext } from './helpers/holding-device.js';
import { cloneModel, diffModel, type Model } from './helpers/model.js';
import { memoryOnly, testImage } from './helpers/test-image.js';

const OPTS = { walThreshold: 64, cacheSize: 1 << 20 };

async function churn(db: Database, model: Model, rng: Prng, commits: number): Promise<void> {
  for (let c = 0; c < commits; c++) {
    const writes: Promise<number>[] = [];
    for (let i = 0; i < 1 + rng.int(8); i++) {
      const name = rng.bool() ? 'default' : 'docs';
      const key = `key:${String(rng.int(300)).padStart(4, '0')}`;
      if (rng.int(5) === 0) {
        writes.push(db.store(name).del(key));
        model.get(name)!.delete(key);
      } else {
        const v = { c, i, pad: 'z'.repeat(rng.int(rng.int(20) === 0 ? 20_000 : 600)) };
        writes.push(db.store(name).put(key, v));
        model.get(name)!.set(key, v);
      }
    }
    await Promise.all(writes);
  }
}

test('compaction keeps every live key, frees the space, and the log wraps round over it again and again', async (t) => {
  // A small device: without compaction the churn below would fill it several times over.
  const image = testImage(8 << 20);
  let db = await open(await image.open(), OPTS);
  db.store('docs');
  const rng = new Prng(31);
  const model: Model = new Map([['default', new Map()], ['docs', new Map()]]);
  let compactions = 0;
  let wrapsSeen = 0;
  const wrapped = (): boolean => (db as unknown as { head: number; tail: number }).head < (db as unknown as { tail: number }).tail;
  for (let round = 0; round < 12; round++) {
    await churn(db, model, rng, 200);
    if (wrapped()) wrapsSeen++;
    const before = db.stats();
    const progress: string[] = [];
    const r = await db.compact({ onProgress: (p) => progress.push(p.phase) });
    compactions++;
    t.true(r.reclaimed);
    t.true(r.usedAfter < r.usedBefore, `round ${round}: ${r.usedAfter} < ${r.usedBefore}`);
    t.is(progress[progress.length - 1], 'done');
    const after = db.stats();
    t.true(after.staleBytes < before.staleBytes);
    if (after.usedBytes + after.freeBytes !== after.deviceBytes) t.fail('used + free != device');
    const d = diffModel(db, model);
    if (d) return t.fail(`round ${round} after compaction: ${d}`);
    if (rng.int(3) === 0) {
      await db.close();
      db = await open(await image.open(), OPTS);
      const d2 = diffModel(db, model);
      if (d2) return t.fail(`round ${round} after reopen: ${d2}`);
    }
  }
  await db.close();
  db = await open(await image.open(), OPTS);
  t.is(diffModel(db, model), null);
  t.log(`${compactions} compactions; log had wrapped before ${wrapsSeen} of them; ${db.stats().usedBytes} of ${db.stats().deviceBytes} bytes used`);
  t.true(wrapsSeen > 0, 'the log wrapped round');
  await db.close();
});

test('a snapshot open across a compaction keeps its view; the space is reused only after it closes', async (t) => {
  const db = await open(await testImage(16 << 20).open(), OPTS);
  const s = db.store();
  for (let i = 0; i < 200; i++) await s.put(`k${i}`, { i, v: 1 });
  for (let i = 0; i < 200; i++) await s.put(`k${i}`, { i, v: 2 });
  const snap = db.snapshot();
  await s.del('k7');
  const r = await db.compact();
  t.false(r.reclaimed, 'an older snapshot holds the space');
  const used = db.stats().usedBytes;
  t.deepEqual(snap.store().get('k7'), { i: 7, v: 2 });
  t.is([...snap.store().range()].length, 200);
  t.is(s.get('k7'), undefined);
  snap.close();
  await s.put('next', 1); // the next commit moves the tail
  t.true(db.stats().usedBytes < used);
  // The changes feed still reports the deletion after compaction (tombstones are copied).
  t.true([...s.changes({ since: 0 })].some((c) => c.key === 'k7' && c.deleted));
  // An iterator over the live store is an implicit snapshot: it holds reuse back too.
  const it = s.range();
  t.truthy(it.next().value);
  await s.put('more', 1);
  const r2 = await db.compact();
  t.false(r2.reclaimed, 'an unfinished iterator holds the space');
  t.is([...it].length, 199, 'the iterator finishes over its own view (one entry was read above)');
  await s.put('again', 1);
  const r3 = await db.compact();
  t.true(r3.reclaimed);
  // History from before the compaction is gone once its space is freed.
  t.throws(() => db.snapshot({ seq: 5 }), { code: 'NOT_FOUND' });
  await db.close();
});

test('iterators pin by count: every one opened at a commit must finish before its space is reused', async (t) => {
  const db = await open(await testImage(16 << 20).open(), OPTS);
  const s = db.store();
  for (let i = 0; i < 100; i++) await s.put(`k${i}`, i);
  const held: IterableIterator<unknown>[] = [];
  // Two at one commit, then one at each of 20 later commits (pins of finished iterators are
  // pruned as others pile up); all but the first two finish at once.
  const a = s.range();
  const b = s.range();
  a.next();
  b.next();
  for (let j = 0; j < 20; j++) {
    await s.put(`k${j}`, -j);
    const it = s.range({ limit: 3 });
    it.next();
    held.push(it);
  }
  for (const it of held) [...it];
  for (let i = 0; i < 100; i++) await s.put(`k${i}`, i + 1000);
  t.false((await db.compact()).reclaimed, 'two open iterators hold the space');
  [...a];
  await s.put('x', 1);
  t.false((await db.compact()).reclaimed, 'one open iterator still holds it');
  t.is([...b].length, 99, 'it reads its own view to the end');
  await s.put('y', 1);
  t.true((await db.compact()).reclaimed);
  await db.close();
});

test('a getAsync reading across a compaction holds reuse of the space it reads and returns the value the key had at the call', async (t) => {
  const image = testImage(16 << 20);
  let db = await open(await image.open(), OPTS);
  for (let i = 0; i < 200; i++) await db.store().put(`k${i}`, { i, v: 1 });
  await db.close();
  // Reopened: a cold cache, so the record is read from the device.
  const dev = holdingNext(await image.open(), (cmds) => cmds.every((c) => c.op === 'read'));
  db = await open(dev.device, OPTS);
  const s = db.store();
  dev.arm();
  const pending = s.getAsync('k7');
  await new Promise((r) => setImmediate(r));
  t.is(dev.held, 1, 'the record read is held back');
  for (let i = 0; i < 200; i++) await s.put(`k${i}`, { i, v: 2 });
  t.false((await db.compact()).reclaimed, 'the pending read holds the space');
  dev.release();
  t.deepEqual(await pending, { i: 7, v: 1 });
  await s.put('next', 1);
  t.true((await db.compact()).reclaimed, 'and releases it once done');
  t.deepEqual(s.get('k7'), { i: 7, v: 2 });
  await db.close();
});

test("a snapshot's pending getAsync and open iterator hold the space they read after the snapshot is closed", async (t) => {
  const image = testImage(16 << 20);
  let db = await open(await image.open(), OPTS);
  for (let i = 0; i < 200; i++) await db.store().put(`k${String(i).padStart(3, '0')}`, { i, v: 1 });
  await db.close();
  const dev = holdingNext(await image.open(), (cmds) => cmds.every((c) => c.op === 'read'));
  db = await open(dev.device, OPTS);
  const s = db.store();
  const snap = db.snapshot();
  const it = snap.store().range();
  t.deepEqual(it.next().value, ['k000', { i: 0, v: 1 }]);
  dev.arm();
  const pending = snap.store().getAsync('k150');
  await new Promise((r) => setImmediate(r));
  t.is(dev.held, 1, 'the record read is held back');
  snap.close();
  for (let i = 0; i < 200; i++) await s.put(`k${String(i).padStart(3, '0')}`, { i, v: 2 });
  t.false((await db.compact()).reclaimed, 'the pending read and the open iterator hold the space');
  dev.release();
  t.deepEqual(await pending, { i: 150, v: 1 });
  // Enough new commits to run over the space the compaction freed, were it reclaimed.
  for (let round = 0; round < 3; round++) for (let i = 0; i < 200; i++) await s.put(`n${i}`, Buffer.alloc(2000, round));
  let n = 1;
  for (const [k, v] of it) {
    t.deepEqual([k, v], [`k${String(n).padStart(3, '0')}`, { i: n, v: 1 }]);
    n++;
  }
  t.is(n, 200, 'the iterator read the snapshot to its end');
  await s.put('next', 1);
  t.true((await db.compact()).reclaimed, 'and both release it once done');
  await db.close();
});

memoryOnly(test)('a crash at any point of a compaction leaves the state as it was', async (t) => {
  const base = new FaultyDevice(8 << 20, { seed: 3 });
  let db = await open(base, OPTS);
  const rng = new Prng(5);
  const model: Model = new Map([['default', new Map()], ['docs', new Map()]]);
  db.store('docs');
  await churn(db, model, rng, 60);
  await db.close();
  const image0 = base.crash({ keep: 'all' });
  const probe = new FaultyDevice(image0, { seed: 4 });
  db = await open(probe, OPTS);
  const opsBefore = probe.operations;
  await db.compact();
  const total = probe.operations - opsBefore;
  await db.close();
  let checked = 0;
  for (let point = opsBefore; point <= opsBefore + total; point++) {
    const dev = new FaultyDevice(image0, { seed: point });
    dev.powerFailAt(point);
    try {
      const d = await open(dev, OPTS);
      await d.compact().catch(() => {});
    } catch {
      // power failed during open
    }
    for (const p of [{ keep: 'none' as const, tear: 'none' as const }, { keep: 'random' as const, tear: 'random' as const }, { keep: 'all' as const, tear: 'prefix' as const }]) {
      const after = await open(new FaultyDevice(dev.crash({ ...p, seed: point })), OPTS);
      const diff = diffModel(after, model);
      if (diff) return t.fail(`crash at operation ${point} (${p.keep}/${p.tear}): ${diff}`);
      await after.store().put('after', 1);
      await after.compact();
      const diff2 = diffModel(after, new Map([...cloneModel(model)].map(([n, m]) => [n, n === 'default' ? new Map([...m, ['after', 1]]) : m])));
      if (diff2) return t.fail(`crash at operation ${point} (${p.keep}/${p.tear}), compacted again: ${diff2}`);
      await after.close();
      checked++;
    }
  }
  t.log(`${total} device operations in a compaction; ${checked} crash images checked`);
  t.true(checked >= 3 * total);
});

test('frames larger than the device transfer limit are read back at open (split reads)', async (t) => {
  const image = testImage(32 << 20);
  const big = Buffer.alloc(3 << 20, 7);
  let db = await open(await image.open({ maxTransfer: 1 << 20 }), OPTS);
  await db.store().put('big', big);
  await db.close(); // the checkpoint frame holds the 3 MiB record
  db = await open(await image.open({ maxTransfer: 1 << 20 }), OPTS);
  t.true(Buffer.from(db.store().get('big') as Buffer).equals(big));
  await db.store().put('big2', big); // a WAL frame over the limit, replayed at the next open
  await db.close();
  db = await open(await image.open({ maxTransfer: 1 << 20 }), OPTS);
  t.is((db.store().get('big2') as Buffer).length, big.length);
  await db.close();
});

/**
 * Small frames near the log's start (cached), all deleted and compacted away; then commits of
 * frames too large for the cache (1.2 MiB: 20 values of 60 KB and 50 small ones), overwriting
 * the same keys, until one lands at the log's start again. Calls `check(round)` after that
 * commit and a checkpoint (so that reads go through the index and the record blocks).
 */
async function wrapOverCachedBlocks(db: Database, check: (round: number) => Promise<void>, afterCommit: () => Promise<void> = async () => {}): Promise<boolean> {
  const s = db.store('x');
  const st = db as unknown as { head: number };
  for (let b = 0; b < 20; b++) await Promise.all(Array.from({ length: 50 }, (_, i) => s.put(`a:${b}:${i}`, Buffer.alloc(200, 1))));
  await db.checkpoint();
  for (let b = 0; b < 20; b++) for (let i = 0; i < 50; i++) if (!s.get(`a:${b}:${i}`)) throw new Error('phase A lost');
  await afterCommit();
  for (let b = 0; b < 20; b++) await Promise.all(Array.from({ length: 50 }, (_, i) => s.del(`a:${b}:${i}`)));
  for (let round = 0; round < 40; round++) {
    const p: Promise<number>[] = [];
    for (let i = 0; i < 50; i++) p.push(s.put(`c:${i}`, Buffer.alloc(300, round)));
    for (let i = 0; i < 20; i++) p.push(s.put(`b:${i}`, Buffer.alloc(60_000, round)));
    const headBefore = st.head;
    await Promise.all(p);
    await afterCommit();
    if (st.head < headBefore) {
      await db.checkpoint();
      await check(round);
      return true;
    }
    if (st.head > 6 << 20) {
      // A snapshot keeps the space compaction frees until afterCommit has run (a reader in
      // another process follows the log through the compaction, not past its reuse).
      const snap = db.snapshot();
      await db.compact();
      await afterCommit();
      snap.close();
    }
  }
  return false;
}

function sameRound(t: ExecutionContext, s: Store, round: number, who: string): void {
  for (let i = 0; i < 50; i++) t.deepEqual(s.get(`c:${i}`), Buffer.alloc(300, round), `${who} c:${i}`);
  for (let i = 0; i < 20; i++) t.deepEqual(s.get(`b:${i}`), Buffer.alloc(60_000, round), `${who} b:${i}`);
  t.is([...s.keys({ prefix: 'c:' })].length, 50, `${who}: range over the new records`);
}

test('a frame too large to cache, written where the log wraps round, is read from the device, not from blocks cached on the last lap', async (t) => {
  const db = await open(new MemoryDevice(new Uint8Array(8 << 20)), { cacheSize: '64MiB', walThreshold: 64 });
  const wrapped = await wrapOverCachedBlocks(db, async (round) => sameRound(t, db.store('x'), round, 'writer'));
  t.true(wrapped, 'the log wrapped round');
  await db.close();
});

test('a read-only reader following the log drops the blocks and nodes it cached where the writer wraps round', async (t) => {
  const dev = new MemoryDevice(new Uint8Array(8 << 20));
  const db = await open(dev, { cacheSize: '64MiB', walThreshold: 64 });
  db.store('x');
  await db.checkpoint();
  const reader = await open(dev, { readOnly: true, cacheSize: '64MiB' });
  // The reader reads what the writer wrote before the wrap (so its cache holds those blocks)
  // and refreshes after every commit and compaction, following the log all the way (it never
  // has to start again from a superblock, which would empty its cache).
  let followed = 0;
  const wrapped = await wrapOverCachedBlocks(db, async (round) => {
    await reader.refresh();
    sameRound(t, reader.store('x'), round, 'reader');
    followed++;
  }, async () => {
    await reader.refresh();
    for (const e of reader.store('x').range({})) if (!e) throw new Error('no entry');
  });
  t.true(wrapped && followed === 1, 'the log wrapped round');
  await reader.close();
  await db.close();
});

test('a read-only reader that refreshes after a compaction freed the frames it would have followed starts again from the newest checkpoint', async (t) => {
  const dev = new MemoryDevice(new Uint8Array(8 << 20));
  const db = await open(dev, { walThreshold: 64 });
  const s = db.store('x');
  const model = new Map<string, number>();
  const write = async (round: number): Promise<void> => {
    const p: Promise<number>[] = [];
    for (let i = 0; i < 40; i++) {
      const k = `k:${(i * 7 + round) % 100}`;
      model.set(k, round * 1000 + i);
      p.push(s.put(k, round * 1000 + i));
    }
    await Promise.all(p);
  };
  await write(0);
  const reader = await open(dev, { readOnly: true });
  for (let round = 1; round < 30; round++) await write(round);
  // Nothing of this process pins the log, so the frames after the reader's last one are freed
  // (and trimmed: zeros on a memory device) as the compaction ends.
  const r = await db.compact();
  t.true(r.reclaimed);
  await write(30);
  const found = await reader.refresh();
  t.true(found > 0, `refresh moved the reader on (${found} commits)`);
  t.is(reader.stats().lastSeq, db.stats().lastSeq, 'the reader is as current as the writer');
  const want = [...model].sort(([a], [b]) => (a < b ? -1 : 1));
  t.deepEqual([...reader.store('x').range({})], want);
  await reader.close();
  await db.close();
});
