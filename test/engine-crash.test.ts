import test from 'ava';
import { FaultyDevice, open, Prng, type Database } from './helpers/engine.js';
import { cloneModel, diffModel, type Model } from './helpers/model.js';

const SIZE = 4 << 20;
const COMMITS = 210;
const OPTS = { walThreshold: 23, cacheSize: 1 << 20 };

/** The scripted workload: commit i writes a few keys in two stores (and deletes one now and then). */
function commitOps(i: number): { store: string; key: string; value: unknown | null }[] {
  const rng = new Prng(1000 + i);
  const ops: { store: string; key: string; value: unknown | null }[] = [];
  const n = 1 + rng.int(4);
  for (let j = 0; j < n; j++) {
    const store = rng.bool() ? 'default' : 'logs';
    const key = `k${rng.int(60)}`;
    ops.push({ store, key, value: rng.int(6) === 0 ? null : { commit: i, j, pad: 'x'.repeat(rng.int(300)) } });
  }
  return ops;
}

/** models[j] is the state after j acknowledged commits. */
function models(): Model[] {
  const m: Model = new Map([['default', new Map()], ['logs', new Map()]]);
  const out = [cloneModel(m)];
  for (let i = 1; i <= COMMITS; i++) {
    for (const op of commitOps(i)) {
      if (op.value === null) m.get(op.store)!.delete(op.key);
      else m.get(op.store)!.set(op.key, op.value);
    }
    out.push(cloneModel(m));
  }
  return out;
}

/** Runs the workload until the device loses power; returns how many commits were acknowledged. */
async function runUntilFailure(dev: FaultyDevice): Promise<{ acked: number; db: Database | null }> {
  let db: Database;
  try {
    db = await open(dev, OPTS);
    db.store('logs');
  } catch {
    return { acked: -1, db: null };
  }
  let acked = 0;
  for (let i = 1; i <= COMMITS; i++) {
    const writes = commitOps(i).map((op) => (op.value === null ? db.store(op.store).del(op.key) : db.store(op.store).put(op.key, op.value as never)));
    const results = await Promise.allSettled(writes);
    if (results.some((r) => r.status === 'rejected')) break;
    acked = i;
  }
  return { acked, db };
}

test('a crash at every write and flush of a 210-commit workload loses no acknowledged commit and shows no partial one', async (t) => {
  const all = models();
  // A formatted image to start from, and the number of device operations a full run takes.
  const base = new FaultyDevice(SIZE, { seed: 1 });
  const fmt = await open(base, OPTS);
  fmt.store('logs');
  await fmt.close();
  const image0 = base.crash({ keep: 'all' });
  const probe = new FaultyDevice(image0, { seed: 2 });
  const full = await runUntilFailure(probe);
  t.is(full.acked, COMMITS);
  await full.db!.close();
  const totalOps = probe.operations;
  t.log(`${totalOps} device operations in a full run`);

  const policies = [
    { keep: 'none' as const, tear: 'none' as const },
    { keep: 'all' as const, tear: 'none' as const },
    { keep: 'random' as const, tear: 'random' as const },
    { keep: 'all' as const, tear: 'prefix' as const },
  ];
  let checked = 0;
  for (let point = 0; point <= totalOps; point++) {
    const dev = new FaultyDevice(image0, { seed: point });
    dev.powerFailAt(point);
    const { acked } = await runUntilFailure(dev);
    for (const p of policies) {
      const image = dev.crash({ ...p, seed: point * 7 + checked });
      let db: Database;
      try {
        db = await open(new FaultyDevice(image), OPTS);
      } catch (e) {
        t.fail(`crash at operation ${point} (${p.keep}/${p.tear}): reopen failed: ${(e as Error).message}`);
        return;
      }
      const candidates = [Math.max(acked, 0), acked + 1].filter((j) => j <= COMMITS);
      const diffs = candidates.map((j) => diffModel(db, all[j]!));
      if (diffs.every((d) => d !== null)) {
        t.fail(`crash at operation ${point} (${p.keep}/${p.tear}), ${acked} commits acknowledged: ${diffs.join(' / ')}`);
        return;
      }
      // The store keeps working after recovery.
      await db.store('default').put('after-crash', 1);
      t.is(db.store('default').get('after-crash'), 1);
      await db.close();
      checked++;
    }
  }
  t.log(`${checked} crash images recovered and checked`);
});
