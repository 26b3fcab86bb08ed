// The read paths on a warm store (20,000 keys, checkpointed so every key is in the index):
// random sync get, random getAsync, full scan, seek + read 10. Best of several repetitions of
// each (CPU-bound work on a busy machine: the best run is the least disturbed one).
//   npx tsx bench/engine-read.ts [keys=20000] [reps=7]
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { open } from '../src/index.js';
import { permutation, randomIndices, randomValues, userKeys } from './suite/data.js';

const N = Number(process.argv[2] ?? 20000);
const REPS = Number(process.argv[3] ?? 7);
const keys = userKeys(N);
const values = randomValues(N, 100, 42, 1);
const order = permutation(N, 42, 2);
const gets = randomIndices(100000, N, 42, 3);
const seeks = randomIndices(20000, N, 42, 4);
mkdirSync(join(process.cwd(), '.bench-tmp'), { recursive: true });
const tmp = mkdtempSync(join(process.cwd(), '.bench-tmp', 'read-'));
const now = (): bigint => process.hrtime.bigint();

function best(label: string, ops: number, f: () => void): void {
  let bestNs = Infinity;
  for (let r = 0; r < REPS; r++) {
    const t = now();
    f();
    bestNs = Math.min(bestNs, Number(now() - t));
  }
  console.log(`${label.padEnd(16)} ${((ops / bestNs) * 1e9).toFixed(0).padStart(9)} ops/s  ${(bestNs / ops).toFixed(0).padStart(6)} ns/op`);
}

try {
  const db = await open(join(tmp, 'r.forest'), { size: '8GiB' });
  const s = db.store('bench');
  for (let i = 0; i < N; i += 1000) {
    const p: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(N, i + 1000); j++) p.push(s.put(keys[order[j]!]!, values[order[j]!]!));
    await Promise.all(p);
  }
  await db.checkpoint();
  best('sync get', gets.length, () => {
    for (let i = 0; i < gets.length; i++) if (s.get(keys[gets[i]!]!) === undefined) throw new Error('missing');
  });
  let t = now();
  let bestAsync = Infinity;
  for (let r = 0; r < REPS; r++) {
    t = now();
    for (let i = 0; i < 20000; i++) await s.getAsync(keys[gets[i]!]!);
    bestAsync = Math.min(bestAsync, Number(now() - t));
  }
  console.log(`${'async get'.padEnd(16)} ${((20000 / bestAsync) * 1e9).toFixed(0).padStart(9)} ops/s  ${(bestAsync / 20000).toFixed(0).padStart(6)} ns/op`);
  best('scan', N, () => {
    let n = 0;
    for (const _ of s.range({})) n++;
    if (n !== N) throw new Error(`scanned ${n}`);
  });
  best('seek+10', seeks.length, () => {
    for (let i = 0; i < seeks.length; i++) for (const _ of s.range({ gte: keys[seeks[i]!]!, limit: 10 }));
  });
  await db.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
