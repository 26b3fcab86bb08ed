// Bytes allocated per batched put, by allocating function: a durable load of 200,000 keys
// (batches of 1,000) on an in-memory device, twice to warm up, then once under V8's sampling
// heap profiler with objects that later died included, so the figures are allocation volume
// (what the scavenger pays for), not what is still alive. Inlined callees count to their caller.
// Each batch is 1,000 put() promises (group commit), or with TX=1 one db.transaction (as the
// suite's batches are).
//   npx tsx bench/engine-alloc.ts        env: ORDER=random (default: key order), TX=1
import { Session } from 'node:inspector/promises';
import { MemoryDevice, open } from '../src/index.js';
import { permutation, randomValues, userKeys } from './suite/data.js';
const N = 200000; const keys = userKeys(N); const values = randomValues(N, 100, 42, 1);
const ord = process.env.ORDER === 'random' ? permutation(N, 42, 2) : null;
const TX = process.env.TX === '1';
async function load() {
  const db = await open(new MemoryDevice(1 << 30), { size: '8GiB', durability: 'sync' });
  const s = db.store('bench');
  for (let i = 0; i < N; i += 1000) {
    if (TX) {
      await db.transaction((tx) => { const t = tx.store('bench'); for (let j = i; j < i + 1000; j++) { const k = ord ? ord[j]! : j; t.put(keys[k]!, values[k]!); } });
      continue;
    }
    const p: Promise<unknown>[] = []; for (let j = i; j < i + 1000; j++) { const k = ord ? ord[j]! : j; p.push(s.put(keys[k]!, values[k]!)); } await Promise.all(p);
  }
  await db.close();
}
await load(); await load();
const session = new Session();
session.connect();
// The two include flags are in the protocol but not in Node's type definitions.
await session.post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as object);
await load();
interface SampleNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: SampleNode[] }
const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: SampleNode } };
const self = new Map<string, number>(); let total = 0;
const walk = (n: SampleNode): void => { const k = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`; const sz = n.selfSize; total += sz; self.set(k, (self.get(k) ?? 0) + sz); for (const c of n.children) walk(c); };
walk(profile.head);
console.log('total MB', (total / 1048576).toFixed(1), 'per put B', (total / N).toFixed(0));
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((v / N).toFixed(0).padStart(6), 'B/put', k);
