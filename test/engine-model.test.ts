import test from 'ava';
import { open, Prng, type Database } from './helpers/engine.js';
import { diffModel, type Model } from './helpers/model.js';
import { scaled, testImage, testImageHome } from './helpers/test-image.js';

const STORES = ['default', 'users', 'paths'];
// FORESTFS_TEST_SCALE shortens the run on slow devices; reopens stay as many (about 19).
const OPS = scaled(50_000);
const REOPEN_ONE_IN = scaled(400, 20);

function keyFor(rng: Prng, store: string): string {
  switch (store) {
    case 'users': return `user:${String(rng.int(3000)).padStart(9, '0')}`;
    case 'paths': return `/srv/${['a', 'b', 'c'][rng.int(3)]}/${'x'.repeat(rng.int(60))}/${rng.int(400)}.txt`;
    default: return String.fromCharCode(...Array.from({ length: 1 + rng.int(6) }, () => 97 + rng.int(4)));
  }
}

function valueFor(rng: Prng, i: number): unknown {
  switch (rng.int(4)) {
    case 0: return { i, tag: 'doc', list: [1, 2, i] };
    case 1: return `string value ${i}`;
    case 2: return [i, 'arr'];
    default: return i;
  }
}

test(`${OPS.toLocaleString('en-US')} random operations over 3 stores, with group commits, checkpoints and reopens, agree with a model`, async (t) => {
  const seed = Number(process.env.SEED ?? 20261125);
  t.log(`seed ${seed}, on ${testImageHome}`);
  const rng = new Prng(seed);
  const image = testImage(256 << 20);
  const opts = { walThreshold: 97, cacheSize: 1 << 20 };
  let db: Database = await open(await image.open(), opts);
  const model: Model = new Map(STORES.map((s) => [s, new Map()]));
  let ops = 0;
  let reopens = 0;
  while (ops < OPS) {
    // A group: several writes in one event-loop turn share a commit.
    const group = 1 + rng.int(12);
    const pending: Promise<number>[] = [];
    for (let g = 0; g < group; g++, ops++) {
      const sname = STORES[rng.int(STORES.length)]!;
      const store = db.store(sname);
      const key = keyFor(rng, sname);
      const mkey = Buffer.from(key, 'utf8').toString('latin1');
      const r = rng.int(100);
      if (r < 55) {
        const v = valueFor(rng, ops);
        pending.push(store.put(key, v as never));
        model.get(sname)!.set(mkey, v);
      } else if (r < 70) {
        pending.push(store.del(key));
        model.get(sname)!.delete(mkey);
      } else if (r < 85) {
        // reads see committed state only: compare after the group
      } else {
        const lo = keyFor(rng, sname);
        const reverse = rng.bool();
        const limit = rng.int(20);
        await Promise.all(pending.splice(0));
        const got = [...store.range({ gte: lo, reverse, limit })].map(([k]) => k);
        const loL = Buffer.from(lo, 'utf8').toString('latin1');
        let want = [...model.get(sname)!.keys()].filter((k) => k >= loL).sort();
        if (reverse) want.reverse();
        want = want.slice(0, limit).map((k) => Buffer.from(k, 'latin1').toString('utf8'));
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          t.fail(`op ${ops}: range(${lo}, reverse ${reverse}, limit ${limit}) = ${JSON.stringify(got)}, model ${JSON.stringify(want)}`);
          return;
        }
      }
    }
    await Promise.all(pending);
    // Point reads of random keys, present and absent.
    for (let i = 0; i < 3; i++) {
      const sname = STORES[rng.int(STORES.length)]!;
      const key = keyFor(rng, sname);
      const want = model.get(sname)!.get(Buffer.from(key, 'utf8').toString('latin1'));
      const got = rng.bool() ? db.store(sname).get(key) : await db.store(sname).getAsync(key);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        t.fail(`op ${ops}: get(${sname}, ${key}) = ${JSON.stringify(got)}, model ${JSON.stringify(want)}`);
        return;
      }
    }
    if (rng.int(REOPEN_ONE_IN) === 0) {
      await db.close();
      db = await open(await image.open(), opts);
      reopens++;
      const d = diffModel(db, model);
      if (d) {
        t.fail(`after reopen ${reopens} at op ${ops}: ${d}`);
        return;
      }
    }
  }
  t.is(diffModel(db, model), null);
  const stats = db.stats();
  t.log(`${ops} ops, ${reopens} reopens, ${stats.commits} commits since the last open, ${stats.checkpoints} checkpoints, live ${stats.liveBytes} stale ${stats.staleBytes}`);
  t.true(reopens >= 5);
  await db.close();
});
