// prepareLog: zeros written ahead of the log's head on image files, so small commits overwrite
// allocated blocks. They must only ever land on free space, also when the log has wrapped and
// the head runs up to the tail, where the oldest live records are.
import test from 'ava';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryDevice, open, Prng, type Database } from './helpers/engine.js';
import { diffModel, type Model } from './helpers/model.js';
import { tempDir } from './helpers/tmp.js';

interface LogState {
  head: number;
  tail: number;
}
const log = (db: Database): LogState => db as unknown as LogState;

test('zeros ahead of the head never reach live data, with the log wrapped and the head close to the tail', async (t) => {
  const image = new Uint8Array(4 << 20);
  const opts = { walThreshold: 32, cacheSize: 1 << 20, prepareLog: true };
  let db = await open(new MemoryDevice(image), opts);
  const rng = new Prng(77);
  const model: Model = new Map([['default', new Map()]]);
  let closeCalls = 0; // wrapped, with the head within one preparation (1 MiB) of the tail
  let compactions = 0;
  for (let round = 0; round < 4000; round++) {
    const writes: Promise<number>[] = [];
    for (let i = 0; i < 1 + rng.int(6); i++) {
      const key = `k${String(rng.int(400)).padStart(4, '0')}`;
      const v = { round, i, pad: 'p'.repeat(400 + rng.int(1200)) };
      writes.push(db.store().put(key, v));
      model.get('default')!.set(key, v);
    }
    await Promise.all(writes);
    const { head, tail } = log(db);
    if (head < tail && tail - head < 1 << 20) closeCalls++;
    // Compact when space runs low: the log wraps round and the tail moves on.
    if (db.stats().freeBytes < 700 << 10) {
      await db.compact();
      compactions++;
    }
    if (round % 400 === 399) {
      await db.close();
      db = await open(new MemoryDevice(image), opts);
    }
    if (round % 10 === 0) {
      const diff = diffModel(db, model);
      if (diff) return t.fail(`round ${round}: ${diff}`);
    }
  }
  await db.close();
  db = await open(new MemoryDevice(image), opts);
  t.is(diffModel(db, model), null);
  await db.close();
  t.log(`${compactions} compactions; ${closeCalls} commits with the log wrapped and the head within 1 MiB of the tail`);
  t.true(compactions >= 3, 'the log wrapped round');
  t.true(closeCalls > 0, 'the head came within one preparation of the tail');
});

test('an image file is zeroed ahead of small commits by default, and not with prepareLog: false', async (t) => {
  const dir = tempDir(t);
  const allocated = async (prepareLog: boolean | undefined): Promise<number> => {
    const path = join(dir, `p-${String(prepareLog)}.forest`);
    const db = await open(path, { size: '64MiB', ...(prepareLog === undefined ? {} : { prepareLog }) });
    for (let i = 0; i < 20; i++) await db.store().put(`k${i}`, i);
    const blocks = statSync(path).blocks * 512;
    await db.close();
    return blocks;
  };
  const byDefault = await allocated(undefined);
  const off = await allocated(false);
  t.log(`allocated after 20 small commits: ${byDefault} bytes by default, ${off} with prepareLog: false`);
  t.true(byDefault >= 1 << 20, 'a megabyte ahead of the head is allocated');
  t.true(off < byDefault - (512 << 10));
});

test('each block ahead of the head is zeroed once: small commits write their frames and about as many zeros, not more', async (t) => {
  const db = await open(new MemoryDevice(64 << 20), { prepareLog: true });
  const s = db.store();
  for (let i = 0; i < 1500; i++) await s.put(`k${i % 100}`, i);
  const { bytesWritten, usedBytes } = db.stats();
  t.log(`1,500 one-put commits: ${usedBytes} bytes of log, ${bytesWritten} bytes written`);
  // Frames (the log) plus zeros over the same range and at most 1.5 MiB ahead of it.
  t.true(bytesWritten <= 2 * usedBytes + (3 << 19), `${bytesWritten} <= 2 × ${usedBytes} + 1.5 MiB`);
  await db.close();
});
