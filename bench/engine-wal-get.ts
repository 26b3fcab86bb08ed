// Sync get against the WAL's size: after a random-order load (the suite's: N keys `user:%09d`,
// 100-byte values, batches of 1,000) the WAL holds tens of thousands of entries. Times gets of
// keys the WAL holds and of keys it does not, then the same keys after a checkpoint (empty
// WAL): a get that misses the WAL should cost what it costs with no WAL at all. Before that,
// the first range() after the load (it sorts what the WAL holds) and after each of a few
// out-of-order writes (it merges them in), and a full scan.
//   npx tsx bench/engine-wal-get.ts [keys=200000] [rounds=3]
import { suiteStore } from './loaded-store.js';
import { randomIndices, userKeys } from './suite/data.js';

const N = Number(process.argv[2] ?? 200000);
const ROUNDS = Number(process.argv[3] ?? 3);
const keys = userKeys(N);
const { db, store: s, close, values, order } = await suiteStore('walget', keys);
try {
  // Which keys the WAL holds: those written since the last index flush, the load's last ones.
  const walEntries = db.stats().walEntries;
  const inWal = new Set(order.slice(N - walEntries));
  const hit: number[] = [];
  const miss: number[] = [];
  for (let i = 0; i < N; i++) (inWal.has(i) ? hit : miss).push(i);
  const pick = (from: number[], stream: number): number[] => from.length === 0 ? [] : Array.from(randomIndices(100000, from.length, 7, stream), (x) => from[x]!);
  const hits = pick(hit, 1);
  const misses = pick(miss, 2);
  const ms = (t: bigint): string => (Number(process.hrtime.bigint() - t) / 1e6).toFixed(1);
  for (let r = 0; r < ROUNDS; r++) {
    let t = process.hrtime.bigint();
    for (const e of s.range({ limit: 1 })) if (!e) throw new Error('no entry');
    const first = ms(t);
    t = process.hrtime.bigint();
    let n = 0;
    for (const e of s.range({})) if (e) n++;
    console.log(`${r === 0 ? 'after the load' : `after ${r} write${r > 1 ? 's' : ''}`}: first range ${first} ms, then a full scan ${ms(t)} ms (${n} entries)`);
    // A write to a key already there, out of order (one of the WAL misses below): merged in by
    // the next range.
    await s.put(keys[miss[r]!]!, values[miss[r]!]!);
  }
  const time = (idx: number[]): string => {
    if (idx.length === 0) return '     —';
    const t = process.hrtime.bigint();
    let found = 0;
    for (const i of idx) if (s.get(keys[i]!) !== undefined) found++;
    if (found !== idx.length) throw new Error(`found ${found} of ${idx.length}`);
    return (Number(process.hrtime.bigint() - t) / idx.length).toFixed(0).padStart(6);
  };
  console.log(`${N} keys, ${walEntries} in the WAL after the load; ns per get (100,000 random gets of each kind)`);
  console.log('round  WAL: key in WAL  key not in WAL | after checkpoint: same keys');
  const before: string[][] = [];
  for (let r = 0; r < ROUNDS; r++) before.push([time(hits), time(misses)]);
  await db.checkpoint();
  for (let r = 0; r < ROUNDS; r++) console.log(`${String(r + 1).padStart(5)}  ${before[r]![0]}         ${before[r]![1]}         |                   ${time(hits)}  ${time(misses)}`);
} finally {
  await close();
}
