// The WAL flush policy (database.ts adaptWalLimit): the WAL index grows past walThreshold only
// while flushes rewrite many index nodes per entry (random keys), stays at the threshold for
// keys written in order, and never holds more than 32 MiB of keys and small values.
import test from 'ava';
import { MemoryDevice, open, Prng } from './helpers/engine.js';

/** Loads `count` keys in batches of 1,000; returns the largest WAL seen after a commit. */
async function peakWal(order: 'key' | 'random', count: number, valueSize: number, walThreshold: number): Promise<{ peak: number; checkpoints: number }> {
  const db = await open(new MemoryDevice(new Uint8Array(512 << 20)), { walThreshold, cacheSize: 8 << 20 });
  const s = db.store();
  const rng = new Prng(5);
  const ids = Array.from({ length: count }, (_, i) => i);
  if (order === 'random') rng.shuffle(ids);
  const value = new Uint8Array(valueSize).fill(7);
  let peak = 0;
  for (let i = 0; i < count; i += 1000) {
    const p: Promise<number>[] = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) p.push(s.put(`user:${String(ids[j]).padStart(9, '0')}`, value));
    await Promise.all(p);
    peak = Math.max(peak, db.stats().walEntries);
  }
  // Everything is still there after the flushes.
  for (let i = 0; i < count; i += 997) if (s.get(`user:${String(i).padStart(9, '0')}`) === undefined) throw new Error(`key ${i} lost`);
  const { checkpoints } = db.stats();
  await db.close();
  return { peak, checkpoints };
}

test('random keys let the WAL grow past walThreshold, up to 32 times it', async (t) => {
  const { peak, checkpoints } = await peakWal('random', 100000, 20, 1024);
  t.log(`peak WAL ${peak} entries, ${checkpoints} checkpoints`);
  t.true(peak > 16 * 1024, `the WAL grew (peak ${peak})`);
  t.true(peak <= 32 * 1024 + 1000, `never past 32 × walThreshold plus one batch (peak ${peak})`);
});

test('keys in order keep the WAL at walThreshold', async (t) => {
  const { peak } = await peakWal('key', 30000, 20, 1024);
  t.true(peak <= 1024 + 1000, `peak ${peak}`);
});

test('the WAL is flushed once its keys and small values reach 32 MiB, however many entries it may hold', async (t) => {
  // 2,000-byte values: 32 × 2,048 entries would hold 128 MiB; 32 MiB is ~16,660 of them.
  const { peak } = await peakWal('random', 100000, 2000, 2048);
  t.log(`peak WAL ${peak} entries`);
  t.true(peak > 12000, `the WAL grew (peak ${peak})`);
  t.true(peak <= Math.ceil((32 << 20) / 2014) + 1000, `bounded by bytes (peak ${peak})`);
});
