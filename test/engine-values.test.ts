// Value copies: a write copies the caller's bytes at once (small ones into shared chunks,
// large ones into pooled buffers that are reused after their commit is written). No stored
// value may change when the caller reuses its buffer or when a pooled buffer is reused.
import test from 'ava';
import { MemoryDevice, open } from './helpers/engine.js';

test('values stay as written while caller buffers and pooled copies are reused across commits', async (t) => {
  const image = new Uint8Array(128 << 20);
  let db = await open(new MemoryDevice(image), { walThreshold: 50 });
  const s = db.store();
  const sizes = [100, 2048, 2049, 4096, 4097, 65536, 65537, 1 << 20];
  const scratch = Buffer.alloc(1 << 20);
  const expect = new Map<string, Buffer>();
  for (let commit = 0; commit < 30; commit++) {
    const writes: Promise<number>[] = [];
    for (const [i, n] of sizes.entries()) {
      // One caller buffer for every put, overwritten before the commit runs.
      scratch.fill(commit * 16 + i, 0, n);
      const key = `c${commit}:${n}`;
      writes.push(s.put(key, scratch.subarray(0, n)));
      expect.set(key, Buffer.from(scratch.subarray(0, n)));
    }
    scratch.fill(0xee);
    await Promise.all(writes);
  }
  const check = (label: string): void => {
    let bad = 0;
    for (const [key, want] of expect) if (!want.equals(db.store().get(key) as Buffer)) bad++;
    t.is(bad, 0, `${label}: ${bad} of ${expect.size} values changed`);
  };
  check('before reopen');
  await db.close();
  db = await open(new MemoryDevice(image));
  check('after reopen');
  await db.close();
});
