// Durable batched load as the suite's load-seq / load-rand run it (one db.transaction per 1,000
// puts, each awaited) on fresh image files, with the wall time split into time inside the
// device's submit() (the frame's write + flush, and index flushes) and the rest (the engine's
// CPU, which is what the engine can still cut). Per round: wall ms, submit ms, submits, the
// p50 submit, MiB written through submit().
//   npx tsx bench/engine-load-split.ts [keys=200000] [rounds=4]
//   env: ORDER=random (default: key order)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { open, openDevice, type BlockDevice } from '../src/index.js';
import { permutation, randomValues, userKeys } from './suite/data.js';

const N = Number(process.argv[2] ?? 200000);
const ROUNDS = Number(process.argv[3] ?? 4);
const BATCH = 1000;
const keys = userKeys(N);
const values = randomValues(N, 100, 42, 1);
const order = process.env.ORDER === 'random' ? permutation(N, 42, 2) : null;
mkdirSync(join(process.cwd(), '.bench-tmp'), { recursive: true });
const tmp = mkdtempSync(join(process.cwd(), '.bench-tmp', 'split-'));

/** `dev` with the time spent in its submit() counted. */
function timed(dev: BlockDevice): { ms: number; submits: number; bytes: number; times: number[] } {
  const t = { ms: 0, submits: 0, bytes: 0, times: [] as number[] };
  const submit = dev.submit.bind(dev);
  (dev as { submit: BlockDevice['submit'] }).submit = async (cmds) => {
    const t0 = performance.now();
    try {
      return await submit(cmds);
    } finally {
      const dt = performance.now() - t0;
      t.ms += dt;
      t.submits++;
      t.times.push(dt);
      for (const c of cmds) if (c.op === 'write') t.bytes += c.buffer.bytes.length;
    }
  };
  return t;
}

try {
  console.log(`${N} keys, ${order ? 'random' : 'key'} order, transactions of ${BATCH}`);
  for (let round = 0; round < ROUNDS; round++) {
    const path = join(tmp, `f${round}.forest`);
    await (await open(path, { size: '8GiB' })).close();
    const dev = openDevice(path);
    const t = timed(dev);
    const db = await open(dev);
    const t0 = performance.now();
    for (let i = 0; i < N; i += BATCH) {
      await db.transaction((tx) => {
        const s = tx.store('bench');
        for (let j = i; j < Math.min(N, i + BATCH); j++) {
          const k = order ? order[j]! : j;
          s.put(keys[k]!, values[k]!);
        }
      });
    }
    const wall = performance.now() - t0;
    const p50 = t.times.sort((a, b) => a - b)[t.times.length >> 1] ?? 0;
    console.log(
      `round ${round}: wall ${wall.toFixed(0)} ms (${(N / wall).toFixed(0)}k/s); in submit ${t.ms.toFixed(0)} ms (${t.submits} submits, p50 ${p50.toFixed(2)} ms, ${(t.bytes / 2 ** 20).toFixed(1)} MiB); rest ${(wall - t.ms).toFixed(0)} ms = ${((1000 * (wall - t.ms)) / N).toFixed(2)} µs per put`,
    );
    await db.close();
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
