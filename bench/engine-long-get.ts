// Sync get of long keys: the suite's long-keys data set (200,000 file-path keys of 40-200
// bytes with deep shared prefixes, 100-byte values, loaded in random order in batches of
// 1,000), then rounds of 200,000 random gets, ns per get.
//   npx tsx bench/engine-long-get.ts [rounds=6]
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { open } from '../src/index.js';
import { longKeys, permutation, randomIndices, randomValues } from './suite/data.js';

const N = 200000;
const ROUNDS = Number(process.argv[2] ?? 6);
const keys = longKeys(N, 42);
const values = randomValues(N, 100, 42, 1);
const order = permutation(N, 42, 2);
mkdirSync(join(process.cwd(), '.bench-tmp'), { recursive: true });
const tmp = mkdtempSync(join(process.cwd(), '.bench-tmp', 'longget-'));
try {
  const db = await open(join(tmp, 'f.forest'), { size: '8GiB', durability: 'relaxed' });
  const s = db.store('bench');
  for (let i = 0; i < N; i += 1000) {
    const p: Promise<number>[] = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) p.push(s.put(keys[order[j]!]!, values[order[j]!]!));
    await Promise.all(p);
  }
  const avg = keys.reduce((a, k) => a + k.length, 0) / N;
  console.log(`${N} keys of ${avg.toFixed(0)} bytes on average; ${db.stats().walEntries} in the WAL`);
  const gets = randomIndices(200000, N, 42, 3);
  for (let r = 0; r < ROUNDS; r++) {
    const t = process.hrtime.bigint();
    let found = 0;
    for (const i of gets) if (s.get(keys[i]!) !== undefined) found++;
    if (found !== gets.length) throw new Error(`found ${found} of ${gets.length}`);
    console.log(`round ${r + 1}: ${(Number(process.hrtime.bigint() - t) / gets.length).toFixed(0)} ns per get`);
  }
  await db.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
