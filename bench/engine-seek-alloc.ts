// Bytes allocated and time per seek + read LEN (range({ gte, limit: LEN })) over the store the
// suite's read workloads use: 200,000 keys `user:%09d`, 100-byte values, loaded in random
// order in batches of 1,000 (so the WAL holds tens of thousands of entries). 20,000 seeks,
// twice to warm up, once under V8's sampling heap profiler (objects that died included: the
// allocation volume the scavenger pays for), then five times timed.
//   npx tsx bench/engine-seek-alloc.ts [len=1]
import { Session } from 'node:inspector/promises';
import { suiteStore } from './loaded-store.js';
import { randomIndices, userKeys } from './suite/data.js';

const N = 200000;
const LEN = Number(process.argv[2] ?? 1);
const keys = userKeys(N);
const { db, store: s, close } = await suiteStore('seek', keys);
try {
  const seeks = randomIndices(20000, N, 42, 4);
  const run = (): number => {
    let n = 0;
    for (const i of seeks) for (const e of s.range({ gte: keys[i]!, limit: LEN })) if (e) n++;
    return n;
  };
  run();
  run();
  const session = new Session();
  session.connect();
  // The two include flags are in the protocol but not in Node's type definitions.
  await session.post('HeapProfiler.startSampling', { samplingInterval: 128, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as object);
  run();
  interface SampleNode { selfSize: number; children: SampleNode[] }
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: SampleNode } };
  let bytes = 0;
  const walk = (n: SampleNode): void => {
    bytes += n.selfSize;
    for (const c of n.children) walk(c);
  };
  walk(profile.head);
  const t = process.hrtime.bigint();
  for (let r = 0; r < 5; r++) run();
  const us = Number(process.hrtime.bigint() - t) / 5 / seeks.length / 1000;
  console.log(`seek + ${LEN}: ${(bytes / seeks.length).toFixed(0)} bytes allocated per seek, ${us.toFixed(2)} µs per seek (WAL ${db.stats().walEntries} entries)`);
} finally {
  await close();
}
