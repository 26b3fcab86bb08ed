import test from 'ava';
import { open, Prng, type Database } from './helpers/engine.js';
import { cloneModel, diffModel, type Model } from './helpers/model.js';
import { testImage } from './helpers/test-image.js';

const OPTS = { walThreshold: 40, cacheSize: 1 << 20 };

async function randomCommits(db: Database, model: Model, rng: Prng, commits: number): Promise<number> {
  let last = 0;
  for (let c = 0; c < commits; c++) {
    const writes: Promise<number>[] = [];
    for (let i = 0; i < 1 + rng.int(6); i++) {
      const name = rng.bool() ? 'default' : 'b';
      const key = `k${rng.int(120)}`;
      if (rng.int(4) === 0) {
        writes.push(db.store(name).del(key));
        model.get(name)!.delete(key);
      } else {
        const v = { c, i, big: rng.int(10) === 0 ? 'x'.repeat(40_000) : '' };
        writes.push(db.store(name).put(key, v));
        model.get(name)!.set(key, v);
      }
    }
    last = Math.max(...(await Promise.all(writes)));
  }
  return last;
}

test('rollback makes an earlier commit current again, and the state survives a reopen exactly', async (t) => {
  const image = testImage(64 << 20);
  let db = await open(await image.open(), OPTS);
  const rng = new Prng(9);
  const model: Model = new Map([['default', new Map()], ['b', new Map()]]);
  db.store('b');
  const seqA = await randomCommits(db, model, rng, 80);
  const atA = cloneModel(model);
  await randomCommits(db, model, rng, 150); // several index flushes later
  await db.close();
  db = await open(await image.open(), OPTS);
  await randomCommits(db, model, rng, 20);
  await db.store('late').put('only-after', 1); // a store created after seqA

  const before = db.stats().lastSeq;
  const seqR = await db.rollback(seqA);
  t.true(seqR > before, 'the rollback is a new commit with new sequence numbers');
  t.is(diffModel(db, atA), null);
  t.deepEqual([...db.store('late').range()], []);
  // The changes feed reports what the rollback restored, with new sequence numbers.
  const restored = [...db.store('default').changes({ since: before })];
  t.true(restored.length > 0);
  t.true(restored.every((c) => c.seq > before));

  await db.close();
  db = await open(await image.open(), OPTS);
  t.is(diffModel(db, atA), null);
  // History still reads: the state just before the rollback.
  const snap = db.snapshot({ seq: before });
  t.is(snap.store('late').get('only-after'), 1);
  snap.close();
  // And the database keeps working.
  await db.store().put('after', 'rollback');
  t.is(db.store().get('after'), 'rollback');
  await db.close();
});

test('snapshot({ seq }) of a sequence number inside a commit gives the commit before it; bad seqs are refused', async (t) => {
  const db = await open(await testImage(16 << 20).open(), OPTS);
  const s = db.store();
  const [a1, a2] = await Promise.all([s.put('a', 1), s.put('b', 1)]);
  t.is(a2, a1! + 1);
  await Promise.all([s.put('a', 2), s.put('b', 2)]);
  const snap = db.snapshot({ seq: a1! }); // a1 is inside the first commit
  t.is(snap.store().get('a'), undefined);
  t.is(snap.seq, 0);
  snap.close();
  const snap2 = db.snapshot({ seq: a2! });
  t.deepEqual([...snap2.store().range()], [['a', 1], ['b', 1]]);
  t.is(snap2.seq, a2);
  snap2.close();
  t.throws(() => snap2.store(), { code: 'CLOSED' });
  t.throws(() => db.snapshot({ seq: -1 }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => db.snapshot({ seq: 1.5 }), { code: 'INVALID_ARGUMENT' });
  await t.throwsAsync(db.rollback(Number.NaN), { code: 'INVALID_ARGUMENT' });
  // A rollback to the current state changes nothing.
  const last = db.stats().lastSeq;
  t.is(await db.rollback(last), last);
  await db.close();
});

test('snapshots are closed by close(), and an open snapshot keeps its view across index flushes', async (t) => {
  const db = await open(await testImage(16 << 20).open(), { walThreshold: 5 });
  const s = db.store();
  for (let i = 0; i < 20; i++) await s.put(`k${i}`, i);
  const snap = db.snapshot();
  for (let i = 0; i < 20; i++) await (i % 2 ? s.del(`k${i}`) : s.put(`k${i}`, -i));
  await db.checkpoint();
  t.is(snap.store().get('k3'), 3);
  t.is([...snap.store().range()].length, 20);
  t.is(db.openSnapshots, 1);
  await db.close();
  t.true(snap.closed);
});
