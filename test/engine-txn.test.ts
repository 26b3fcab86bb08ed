import test from 'ava';
import { FaultyDevice, ForestError, open, Prng, type Database } from './helpers/engine.js';
import { cloneModel, diffModel, type Model } from './helpers/model.js';
import { memoryOnly, testImage } from './helpers/test-image.js';

const mem = async (): Promise<Database> => open(await testImage(16 << 20).open(), { walThreshold: 50 });

test('a transaction reads its own writes over a snapshot, and commits all of them at once', async (t) => {
  const db = await mem();
  const s = db.store();
  await s.put('a', 1);
  await s.put('b', 2);
  const result = await db.transaction(async (tx) => {
    const ts = tx.store();
    t.is(ts.get('a'), 1);
    ts.put('a', 10);
    ts.del('b');
    ts.put('c', 3);
    t.is(ts.get('a'), 10);
    t.is(ts.get('b'), undefined);
    t.false(ts.has('b'));
    t.deepEqual(ts.getEntry('a'), { key: 'a', value: 10, seq: null });
    t.deepEqual([...ts.range()], [['a', 10], ['c', 3]]);
    t.deepEqual([...ts.range({ reverse: true, limit: 1 })], [['c', 3]]);
    // Nothing is visible outside until the transaction commits.
    t.is(s.get('a'), 1);
    // A write committed by someone else meanwhile is not seen: reads come from the snapshot.
    await s.put('z', 26);
    t.is(ts.get('z'), undefined);
    return 'done';
  });
  t.is(result, 'done');
  t.deepEqual([...s.range()], [['a', 10], ['c', 3], ['z', 26]]);
  await db.close();
});

test('a transaction range with a prefix sees only keys with it, its own writes included', async (t) => {
  const db = await mem();
  const s = db.store();
  for (const k of ['a', 'ab', 'abz', 'ac', 'b']) await s.put(k, k);
  await db.transaction((tx) => {
    const ts = tx.store();
    for (const k of ['aa', 'ab0', 'ac', 'abzz', 'a\u00ff', 'b0']) ts.put(k, 1);
    t.deepEqual([...ts.keys({ prefix: 'ab' })], ['ab', 'ab0', 'abz', 'abzz']);
    t.deepEqual([...ts.keys({ prefix: 'ab', lte: 'ac' })], ['ab', 'ab0', 'abz', 'abzz']);
    t.deepEqual([...ts.keys({ prefix: 'ab', reverse: true, gt: 'ab0' })], ['abzz', 'abz']);
  });
  await db.close();
});

test('a throw inside a transaction aborts it: nothing is written, the error comes out', async (t) => {
  const db = await mem();
  const s = db.store();
  await s.put('keep', 1);
  const before = db.stats().lastSeq;
  const err = await t.throwsAsync(db.transaction((tx) => {
    tx.store().put('x', 1);
    tx.store().del('keep');
    throw new Error('changed my mind');
  }), { message: 'changed my mind' });
  t.truthy(err);
  await db.flushed;
  t.is(s.get('x'), undefined);
  t.is(s.get('keep'), 1);
  t.is(db.stats().lastSeq, before);
  // Bad input inside: a typed error, and the transaction's other writes are dropped too.
  await t.throwsAsync(db.transaction((tx) => {
    tx.store().put('y', 1);
    tx.store().put('', 1);
  }), { instanceOf: ForestError, code: 'KEY_EMPTY' });
  t.is(s.get('y'), undefined);
  // The handle is dead once the function has returned.
  let leaked: { store(): { get(k: string): unknown } } | null = null;
  await db.transaction((tx) => {
    leaked = tx;
  });
  t.throws(() => leaked!.store().get('keep'), { code: 'CLOSED' });
  await db.close();
});

test('conditional writes: ifVersion and ifAbsent fail with CONFLICT and change nothing', async (t) => {
  const db = await mem();
  const s = db.store();
  const seq1 = await s.put('n', 1);
  t.deepEqual(s.getEntry('n'), { key: 'n', value: 1, seq: seq1 });
  const seq2 = await s.put('n', 2, { ifVersion: seq1 });
  t.true(seq2 > seq1);
  await t.throwsAsync(s.put('n', 3, { ifVersion: seq1 }), { instanceOf: ForestError, code: 'CONFLICT' });
  t.is(s.get('n'), 2);
  await t.throwsAsync(s.put('n', 3, { ifAbsent: true }), { code: 'CONFLICT' });
  await s.put('fresh', 1, { ifAbsent: true });
  await s.del('fresh');
  await s.put('fresh', 2, { ifAbsent: true }); // deleted counts as absent
  await t.throwsAsync(s.del('gone', { ifVersion: 5 }), { code: 'CONFLICT' });
  await t.throwsAsync(s.put('n', 1, { ifVersion: 0 }), { code: 'INVALID_ARGUMENT' });
  await t.throwsAsync(s.put('n', 1, { ifVersion: -1 }), { code: 'INVALID_ARGUMENT' });
  await t.throwsAsync(s.put('n', 1, { ifVersion: 2, ifAbsent: true }), { code: 'INVALID_ARGUMENT' });

  // A transaction with one failed condition writes none of its writes.
  const v = s.getEntry('n')!.seq;
  await s.put('n', 99); // someone else moves n on
  await t.throwsAsync(db.transaction((tx) => {
    tx.store().put('other', 1);
    tx.store().put('n', 100, { ifVersion: v });
  }), { code: 'CONFLICT' });
  t.is(s.get('n'), 99);
  t.is(s.get('other'), undefined);

  // Two conditional writes to the same key in one commit: the second sees the first.
  const e = s.getEntry('n')!;
  const r = await Promise.allSettled([s.put('n', 'first', { ifVersion: e.seq }), s.put('n', 'second', { ifVersion: e.seq })]);
  t.deepEqual(r.map((x) => x.status), ['fulfilled', 'rejected']);
  t.is(s.get('n'), 'first');
  await db.close();
});

test('read-modify-write with ifVersion and retries never loses an increment', async (t) => {
  const db = await mem();
  const s = db.store('counters');
  await s.put('c', 0);
  let conflicts = 0;
  const incr = async (): Promise<void> => {
    for (;;) {
      try {
        await db.transaction((tx) => {
          const e = tx.store('counters').getEntry('c')!;
          tx.store('counters').put('c', (e.value as number) + 1, { ifVersion: e.seq! });
        });
        return;
      } catch (err) {
        if ((err as ForestError).code !== 'CONFLICT') throw err;
        conflicts++;
      }
    }
  };
  await Promise.all(Array.from({ length: 40 }, incr));
  t.is(s.get('c'), 40);
  t.true(conflicts > 0, 'concurrent transactions did conflict');
  t.log(`${conflicts} conflicts retried`);
  await db.close();
});

const TXS = 60;

function txOps(i: number): { store: string; key: string; value: unknown | null }[] {
  const rng = new Prng(77 + i);
  return Array.from({ length: 2 + rng.int(10) }, (_, j) => ({
    store: rng.bool() ? 'default' : 'other',
    key: `k${rng.int(40)}`,
    value: rng.int(5) === 0 ? null : { tx: i, j, pad: 'p'.repeat(rng.int(1500)) },
  }));
}

memoryOnly(test)('a crash in the middle of a transaction commit leaves all of it or none of it', async (t) => {
  const m: Model = new Map([['default', new Map()], ['other', new Map()]]);
  const states = [cloneModel(m)];
  for (let i = 1; i <= TXS; i++) {
    for (const op of txOps(i)) {
      if (op.value === null) m.get(op.store)!.delete(op.key);
      else m.get(op.store)!.set(op.key, op.value);
    }
    states.push(cloneModel(m));
  }
  const opts = { walThreshold: 37, cacheSize: 1 << 20 };
  const run = async (dev: FaultyDevice): Promise<number> => {
    let db: Database;
    try {
      db = await open(dev, opts);
    } catch {
      return -1;
    }
    let acked = 0;
    for (let i = 1; i <= TXS; i++) {
      try {
        await db.transaction((tx) => {
          for (const op of txOps(i)) {
            if (op.value === null) tx.store(op.store).del(op.key);
            else tx.store(op.store).put(op.key, op.value as never);
          }
        });
      } catch {
        break;
      }
      acked = i;
    }
    if (acked === TXS) await db.close();
    return acked;
  };
  const base = new FaultyDevice(4 << 20, { seed: 1 });
  const fmt = await open(base, opts);
  fmt.store('other');
  await fmt.close();
  const image0 = base.crash({ keep: 'all' });
  const probe = new FaultyDevice(image0, { seed: 2 });
  t.is(await run(probe), TXS);
  const total = probe.operations;
  let checked = 0;
  for (let point = 0; point < total; point++) {
    const dev = new FaultyDevice(image0, { seed: point });
    dev.powerFailAt(point);
    const acked = await run(dev);
    for (const p of [{ keep: 'none' as const, tear: 'none' as const }, { keep: 'random' as const, tear: 'random' as const }, { keep: 'all' as const, tear: 'prefix' as const }]) {
      const db = await open(new FaultyDevice(dev.crash({ ...p, seed: point })), opts);
      const ok = [Math.max(acked, 0), acked + 1].filter((j) => j <= TXS).some((j) => diffModel(db, states[j]!) === null);
      if (!ok) return t.fail(`crash at operation ${point} (${p.keep}/${p.tear}) after ${acked} transactions: the state is not a whole number of transactions`);
      await db.close();
      checked++;
    }
  }
  t.log(`${total} device operations; ${checked} crash images checked`);
});

test('a Buffer the caller reuses after put does not change what was stored', async (t) => {
  const db = await mem();
  const s = db.store();
  const buf = Buffer.from('original');
  await s.put('b', buf);
  buf.write('CHANGED!');
  t.is(Buffer.from(s.get('b') as Buffer).toString(), 'original');
  await db.close();
});

test('reads inside a transaction agree with a model however its reads and writes interleave, over two stores', async (t) => {
  // A transaction indexes its own writes only from its first read on (a write-only one keeps
  // none): reads must see every earlier write of their store, and only of their store,
  // whether it came before or after that first read.
  const db = await mem();
  const rng = new Prng(20261126);
  const names = ['default', 'other'];
  const key = (): string => `k${rng.int(40)}`;
  const committed = names.map(() => new Map<string, number>());
  for (let round = 0; round < 40; round++) {
    const model = committed.map((m) => new Map(m));
    const firstRead = rng.int(30);
    await db.transaction((tx) => {
      for (let i = 0; i < 30; i++) {
        const w = rng.int(2);
        const ts = tx.store(names[w]);
        const m = model[w]!;
        const k = key();
        if (i < firstRead || rng.int(2) === 0) {
          if (rng.int(4) === 0) {
            ts.del(k);
            m.delete(k);
          } else {
            const v = round * 100 + i;
            ts.put(k, v);
            m.set(k, v);
          }
          continue;
        }
        const op = rng.int(3);
        if (op === 0) t.is(ts.get(k), m.get(k), `get ${k} in ${names[w]}, round ${round}`);
        else if (op === 1) t.is(ts.has(k), m.has(k), `has ${k} in ${names[w]}, round ${round}`);
        else t.deepEqual([...ts.range()], [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1)), `range of ${names[w]}, round ${round}`);
      }
    });
    model.forEach((m, i) => (committed[i] = m));
    for (let w = 0; w < names.length; w++) {
      t.deepEqual([...db.store(names[w]).range()], [...committed[w]!].sort((a, b) => (a[0] < b[0] ? -1 : 1)), `store ${names[w]} after round ${round}`);
    }
  }
  await db.close();
});
