// Where a small durable commit's time goes: raw device round trips (write+flush, FUA write,
// write alone) on a fresh sparse image, versus ForestFS's one-put commit (sync and relaxed).
// Each kind of raw round trip is also measured over already-written blocks (the floor's case).
// `memory`: one-put sync commits on an in-memory device (the engine's own time per commit).
//   npx tsx bench/engine-commit.ts [ops=2000] [all|raw|engine|memory]
//   env: BACKEND=uring|psync|node-fs (default auto)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryDevice, open } from '../src/index.js';
import { openDevice, BufferPool } from '../src/io/index.js';

const N = Number(process.argv[2] ?? 2000);
mkdirSync(join(process.cwd(), '.bench-tmp'), { recursive: true });
const tmp = mkdtempSync(join(process.cwd(), '.bench-tmp', 'commit-'));
const now = (): bigint => process.hrtime.bigint();
const backend = process.env.BACKEND ? { backend: process.env.BACKEND as 'uring' | 'psync' | 'node-fs' } : {};

function report(name: string, lat: number[]): void {
  lat.sort((a, b) => a - b);
  const q = (p: number): string => (lat[Math.floor(lat.length * p)]! / 1e3).toFixed(1);
  console.log(`${name.padEnd(34)} p50 ${q(0.5).padStart(7)} µs  p90 ${q(0.9).padStart(7)}  p99 ${q(0.99).padStart(7)}`);
}

async function raw(name: string, build: (off: number, buf: import('../src/io/index.js').DeviceBuffer) => import('../src/io/index.js').IoCommand[], overwrite = false): Promise<void> {
  const path = join(tmp, `raw-${name}.img`);
  const dev = openDevice(path, { size: '8GiB', ...backend });
  const pool = new BufferPool(dev);
  const buf = pool.acquire(4096);
  if (overwrite) {
    const big = pool.acquire(1 << 20);
    await dev.submit([{ op: 'write', offset: 0, buffer: big }, { op: 'flush', barrier: true }]);
  }
  const lat: number[] = [];
  for (let i = 0; i < N; i++) {
    buf.bytes[0] = i;
    const off = overwrite ? (i % 256) * 4096 : (i + 2) * 4096;
    const t = now();
    await dev.submit(build(off, buf));
    lat.push(Number(now() - t));
  }
  report(`raw ${name}${overwrite ? ' (overwrite)' : ''}`, lat);
  await dev.close();
  rmSync(path);
}

/** One-put commits; `memory`: on an in-memory device, so the figure is the engine's own time. */
async function engine(durability: 'sync' | 'relaxed', memory = false): Promise<void> {
  const path = join(tmp, `db-${durability}.forest`);
  const db = memory ? await open(new MemoryDevice(1 << 30), { durability }) : await open(path, { size: '8GiB', durability, ...backend });
  const s = db.store('bench');
  const v = Buffer.alloc(100, 7);
  for (let i = 0; i < 50; i++) await s.put(`warm:${i}`, v);
  const lat: number[] = [];
  for (let i = 0; i < N; i++) {
    const k = `user:${String(i).padStart(9, '0')}`;
    const t = now();
    await s.put(k, v);
    lat.push(Number(now() - t));
  }
  report(`forestfs put (${durability}${memory ? ', memory device' : ''})`, lat);
  await db.close();
  rmSync(path, { force: true });
}

const which = process.argv[3] ?? 'all';
try {
  if (which === 'all' || which === 'raw') {
    await raw('write+flush', (offset, buffer) => [{ op: 'write', offset, buffer }, { op: 'flush', barrier: true }]);
    await raw('write+flush', (offset, buffer) => [{ op: 'write', offset, buffer }, { op: 'flush', barrier: true }], true);
    await raw('fua write', (offset, buffer) => [{ op: 'write', offset, buffer, fua: true }]);
    await raw('fua write', (offset, buffer) => [{ op: 'write', offset, buffer, fua: true }], true);
    await raw('write only', (offset, buffer) => [{ op: 'write', offset, buffer }]);
    await raw('write only', (offset, buffer) => [{ op: 'write', offset, buffer }], true);
  }
  if (which === 'all' || which === 'engine') {
    await engine('sync');
    await engine('relaxed');
  }
  if (which === 'all' || which === 'memory') await engine('sync', true);
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
