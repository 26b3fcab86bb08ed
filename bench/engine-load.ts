// Durable batched load (batches of 1,000 puts, each awaited), timed per round on fresh images:
// round 0 in key order (cold JIT, as bench:quick's first workload), then alternating random and
// key order. Prints wall ms, main-thread CPU ms (user+sys, less sensitive to a busy machine),
// and with VERBOSE=1 the per-batch enqueue+commit milliseconds. CPU includes the process's
// other threads (io_uring workers, the completion notifier).
//   npx tsx bench/engine-load.ts [keys=20000] [rounds=6]
//   env: ORDER=key|random (every round in that order), DUR=relaxed (no flush), WAL=<walThreshold>, BACKEND=uring|psync|node-fs|memory, PREPARE=0|1 (prepareLog)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryDevice, open } from '../src/index.js';
import { permutation, randomValues, userKeys } from './suite/data.js';

const N = Number(process.argv[2] ?? 20000);
const ROUNDS = Number(process.argv[3] ?? 6);
const keys = userKeys(N);
const values = randomValues(N, 100, 42, 1);
mkdirSync(join(process.cwd(), '.bench-tmp'), { recursive: true });
const tmp = mkdtempSync(join(process.cwd(), '.bench-tmp', 'load-'));
const durability = (process.env.DUR ?? 'sync') as 'sync' | 'relaxed';
try {
  for (let round = 0; round < ROUNDS; round++) {
    // BACKEND=memory: an in-memory device, so the figures are the engine's CPU alone.
    const target = process.env.BACKEND === 'memory' ? new MemoryDevice(1 << 30) : join(tmp, `f${round}.forest`);
    const db = await open(target, {
      size: '8GiB', durability,
      ...(process.env.WAL ? { walThreshold: Number(process.env.WAL) } : {}),
      ...(process.env.PREPARE ? { prepareLog: process.env.PREPARE === '1' } : {}),
      ...(process.env.BACKEND && process.env.BACKEND !== 'memory' ? { backend: process.env.BACKEND as 'uring' | 'psync' | 'node-fs' } : {}),
    });
    const s = db.store('bench');
    const random = process.env.ORDER ? process.env.ORDER === 'random' : round % 2 === 1;
    const ord = random ? permutation(N, 42, 2) : null;
    const times: string[] = [];
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i += 1000) {
      const t = process.hrtime.bigint();
      const p: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(N, i + 1000); j++) {
        const k = ord ? ord[j]! : j;
        p.push(s.put(keys[k]!, values[k]!));
      }
      const t1 = process.hrtime.bigint();
      await Promise.all(p);
      const t2 = process.hrtime.bigint();
      times.push(`${(Number(t1 - t) / 1e6).toFixed(2)}+${(Number(t2 - t1) / 1e6).toFixed(2)}`);
    }
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    const written = db.stats().bytesWritten / 1048576;
    console.log(`round ${round} ${ord ? 'random' : 'key   '} wall ${wall.toFixed(1)} ms  cpu ${((c.user + c.system) / 1000).toFixed(1)} ms  ${(N / wall).toFixed(0)}k/s  written ${written.toFixed(1)} MiB`);
    if (process.env.VERBOSE) console.log(times.join(' '));
    await db.close();
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
