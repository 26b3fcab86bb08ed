import test from 'ava';
import { open, Prng, type Database } from './helpers/engine.js';
import { cloneModel, diffModel, type Model } from './helpers/model.js';
import { scaled, testImage, testImageHome } from './helpers/test-image.js';
import type { Snapshot } from '../src/index.js';

const STORES = ['default', 'users'];
// FORESTFS_TEST_SCALE shortens the run on slow devices; reopens stay as many (about 15).
const OPS = scaled(20_000);
const REOPEN_ONE_IN = scaled(300, 20);
const latin1 = (k: string): string => Buffer.from(k, 'utf8').toString('latin1');

function keyFor(rng: Prng, store: string): string {
  return store === 'users' ? `user:${String(rng.int(800)).padStart(6, '0')}` : String.fromCharCode(...Array.from({ length: 1 + rng.int(4) }, () => 97 + rng.int(5)));
}

interface Version {
  seq: number;
  deleted: boolean;
  value?: unknown;
}

/** The changes feed a model predicts: latest version per key with seq > since, in seq order. */
function expectedChanges(versions: Map<string, Version>, since: number): string {
  const list = [...versions].filter(([, v]) => v.seq > since).sort(([, a], [, b]) => a.seq - b.seq);
  return JSON.stringify(list.map(([k, v]) => [Buffer.from(k, 'latin1').toString('utf8'), v.seq, v.deleted, v.deleted ? null : v.value]));
}

function actualChanges(db: Database, store: string, since: number): string {
  return JSON.stringify([...db.store(store).changes({ since })].map((c) => [c.key, c.seq, c.deleted, c.deleted ? null : c.value]));
}

test('snapshots never change, past commits read back exactly, and the changes feed matches a model, across writes, index flushes and reopens', async (t) => {
  const seed = Number(process.env.SEED ?? 5150);
  t.log(`seed ${seed}, ${OPS} operations, on ${testImageHome}`);
  const rng = new Prng(seed);
  const image = testImage(128 << 20);
  const opts = { walThreshold: 61, cacheSize: 1 << 20 };
  let db: Database = await open(await image.open(), opts);
  const model: Model = new Map(STORES.map((s) => [s, new Map()]));
  const versions = new Map(STORES.map((s) => [s, new Map<string, Version>()]));
  const open_: { snap: Snapshot; model: Model }[] = [];
  /** Commits whose state we kept: sequence number → model. */
  const history: { seq: number; model: Model }[] = [{ seq: 0, model: cloneModel(model) }];
  const checks = { snapshots: 0, snapshotOpens: 0, history: 0, changes: 0, reopens: 0 };
  for (let ops = 0; ops < OPS;) {
    const group = 1 + rng.int(8);
    const pending: Promise<number>[] = [];
    const issued: { sname: string; key: string; value?: unknown }[] = [];
    for (let g = 0; g < group; g++, ops++) {
      const sname = STORES[rng.int(STORES.length)]!;
      const key = keyFor(rng, sname);
      if (rng.int(100) < 70) {
        const value = { n: ops, s: 'v'.repeat(rng.int(30)) };
        pending.push(db.store(sname).put(key, value));
        issued.push({ sname, key, value });
      } else {
        pending.push(db.store(sname).del(key));
        issued.push({ sname, key });
      }
    }
    const seqs = await Promise.all(pending);
    // One commit: sequence numbers are consecutive, in issue order.
    for (let i = 1; i < seqs.length; i++) t.is(seqs[i], seqs[i - 1]! + 1);
    issued.forEach(({ sname, key, value }, i) => {
      const k = latin1(key);
      if (value === undefined) model.get(sname)!.delete(k);
      else model.get(sname)!.set(k, value);
      versions.get(sname)!.set(k, value === undefined ? { seq: seqs[i]!, deleted: true } : { seq: seqs[i]!, deleted: false, value });
    });
    const commitSeq = seqs[seqs.length - 1]!;
    if (rng.int(6) === 0) history.push({ seq: commitSeq, model: cloneModel(model) });

    // Snapshots: open some, check some, close some.
    if (rng.int(5) === 0) {
      open_.push({ snap: db.snapshot(), model: cloneModel(model) });
      checks.snapshotOpens++;
    }
    if (open_.length > 0 && rng.int(4) === 0) {
      const i = rng.int(open_.length);
      const { snap, model: m } = open_[i]!;
      const d = diffModel(snap, m);
      if (d) return t.fail(`op ${ops}: snapshot at seq ${snap.seq}: ${d}`);
      const sname = STORES[rng.int(STORES.length)]!;
      const key = keyFor(rng, sname);
      t.deepEqual(snap.store(sname).get(key), m.get(sname)!.get(latin1(key)));
      checks.snapshots++;
      if (rng.bool()) {
        snap.close();
        open_.splice(i, 1);
      }
    }
    if (rng.int(25) === 0) {
      const h = history[rng.int(history.length)]!;
      const snap = db.snapshot({ seq: h.seq });
      const d = diffModel(snap, h.model);
      snap.close();
      if (d) return t.fail(`op ${ops}: snapshot({ seq: ${h.seq} }): ${d}`);
      checks.history++;
    }
    if (rng.int(15) === 0) {
      const h = history[rng.int(history.length)]!;
      const since = rng.bool() ? h.seq : rng.int(commitSeq + 1);
      const sname = STORES[rng.int(STORES.length)]!;
      const want = expectedChanges(versions.get(sname)!, since);
      const got = actualChanges(db, sname, since);
      if (got !== want) return t.fail(`op ${ops}: ${sname}.changes({ since: ${since} })\n got ${got.slice(0, 400)}\nwant ${want.slice(0, 400)}`);
      checks.changes++;
    }
    if (rng.int(REOPEN_ONE_IN) === 0) {
      for (const o of open_) o.snap.close();
      open_.length = 0;
      await db.close();
      db = await open(await image.open(), opts);
      checks.reopens++;
    }
  }
  for (const o of open_) t.is(diffModel(o.snap, o.model), null);
  for (const sname of STORES) t.is(actualChanges(db, sname, 0), expectedChanges(versions.get(sname)!, 0));
  t.log(JSON.stringify(checks));
  t.true(checks.reopens >= 3 && checks.history >= scaled(50) && checks.changes >= scaled(100));
  await db.close();
});
