// 64 KiB values in durable batches of 256 (16 MiB commits), as bench:quick's big-values
// workload but longer: MB/s over the whole run and the process's CPU time (user + sys, all
// threads), which tells the engine's own cost apart from waiting on a busy device.
//   npx tsx bench/engine-big.ts [batches=64]        (64 batches = 1 GiB)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { open } from '../src/index.js';
import { randomValues } from './suite/data.js';

const BATCHES = Number(process.argv[2] ?? 64);
mkdirSync(join(process.cwd(), '.bench-tmp'), { recursive: true });
const tmp = mkdtempSync(join(process.cwd(), '.bench-tmp', 'big-'));
try {
  const db = await open(join(tmp, 'big.forest'), { size: '8GiB' });
  const s = db.store('big');
  const values = randomValues(64, 65536, 42, 11);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let b = 0; b < BATCHES; b++) {
    const p: Promise<unknown>[] = [];
    for (let i = 0; i < 256; i++) p.push(s.put(`big:${String(b * 256 + i).padStart(9, '0')}`, values[i % 64]!));
    await Promise.all(p);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  const mib = BATCHES * 16;
  console.log(`${mib} MiB: ${((mib * 2 ** 20) / 1e6 / seconds).toFixed(0)} MB/s, CPU ${((c.user + c.system) / 1000).toFixed(0)} ms (user ${(c.user / 1000).toFixed(0)}, sys ${(c.system / 1000).toFixed(0)})`);
  await db.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
