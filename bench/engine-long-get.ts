// Sync get of long keys: the suite's long-keys data set (200,000 file-path keys of 40-200
// bytes with deep shared prefixes, 100-byte values, loaded in random order in batches of
// 1,000), then rounds of 200,000 random gets, ns per get.
//   npx tsx bench/engine-long-get.ts [rounds=6]
import { suiteStore } from './loaded-store.js';
import { longKeys, randomIndices } from './suite/data.js';

const N = 200000;
const ROUNDS = Number(process.argv[2] ?? 6);
const keys = longKeys(N, 42);
const { db, store: s, close } = await suiteStore('longget', keys);
try {
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
} finally {
  await close();
}
