// Full scans of the suite's data set (200,000 keys `user:%09d`, 100-byte values, loaded in
// batches of 1,000 as the suite loads them): the first scan after the load, which sorts the
// WAL's out-of-order writes, then warm scans (best and median). ORDER=key loads in key order;
// CHECKPOINT=1 moves the WAL into the index after the first scan, so the warm scans read the
// index alone; GETS=n does n random gets first, as the suite's get workload does before its
// scan (they reorder the block cache). Then the event loop turns once, and ForestFS puts the
// WAL's out-of-order writes in key order (Database.orderWhenIdle); IDLE=0 scans at once
// instead, so that the first scan sorts them, as the suite's does (its load, gets and scan
// run without the event loop turning). Prints the WAL's size and the block cache's misses,
// which should be 0.
//   npx tsx bench/engine-scan.ts [keys=200000] [warm scans=7]
import { suiteStore } from './loaded-store.js';
import { permutation, userKeys } from './suite/data.js';

const N = Number(process.argv[2] ?? 200000);
const WARM = Number(process.argv[3] ?? 7);
const keys = userKeys(N);
const ls = await suiteStore('scan', keys, process.env.ORDER === 'key');
const ms = (): number => Number(process.hrtime.bigint()) / 1e6;

/** One full scan; its time in ms and the time to its first entry. */
function scan(): { total: number; first: number } {
  const t0 = ms();
  let first = 0;
  let n = 0;
  let bytes = 0;
  for (const [k, v] of ls.store.range({})) {
    if (n++ === 0) first = ms() - t0;
    bytes += (k as string).length + (v as Uint8Array).length;
  }
  const total = ms() - t0;
  if (n !== N || bytes === 0) throw new Error(`scanned ${n} of ${N}`);
  return { total, first };
}

try {
  const gets = Number(process.env.GETS ?? 0);
  const order = permutation(N, 7, 3);
  let found = 0;
  for (let i = 0; i < gets; i++) if (ls.store.get(keys[order[i % N]!]!) !== undefined) found++;
  if (found !== gets) throw new Error(`found ${found} of ${gets} keys`);
  if (process.env.IDLE !== '0') await new Promise((r) => setImmediate(r));
  const wal = ls.db.stats().walEntries;
  const misses = ls.db.stats().cache.misses;
  const s0 = scan();
  console.log(`${N} keys loaded in ${process.env.ORDER === 'key' ? 'key' : 'random'} order; ${wal} in the WAL`);
  console.log(`first scan  ${s0.total.toFixed(1).padStart(7)} ms  (${s0.first.toFixed(1)} ms to its first entry)  ${((N / s0.total) * 1e3).toFixed(0)} entries/s`);
  if (process.env.CHECKPOINT === '1') await ls.db.checkpoint();
  const warm = Array.from({ length: WARM }, () => scan().total).sort((a, b) => a - b);
  const best = warm[0]!;
  const median = warm[Math.floor(warm.length / 2)]!;
  console.log(`warm scans  ${best.toFixed(1).padStart(7)} ms best, ${median.toFixed(1)} ms median of ${WARM}  ${((N / best) * 1e3).toFixed(0)} entries/s best`);
  console.log(`block cache misses during the scans: ${ls.db.stats().cache.misses - misses}`);
} finally {
  await ls.close();
}
