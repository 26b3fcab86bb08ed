// ForestFS engine hot paths beside lmdb in the same process (both durable): load in key
// order and random order (batches of 1,000 awaited), random sync get, full scan, seek + read 10,
// 64 KiB values. Prints ops/s and the ForestFS ÷ lmdb ratio per workload.
//   npx tsx bench/engine-ops.ts [keys=20000] [workloads=load-seq,load-rand,get,scan,seek,big]
//   env: ONLY=forestfs|lmdb (one store), BIG_MIB=<MiB of 64 KiB values> (default 256)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { open as lmdbOpen } from 'lmdb';
import { open } from '../src/index.js';
import { permutation, randomIndices, randomValues, userKeys } from './suite/data.js';

const N = Number(process.argv[2] ?? 20000);
const which = new Set((process.argv[3] ?? 'load-seq,load-rand,get,scan,seek,big').split(','));
const only = process.env.ONLY; // 'forestfs' or 'lmdb'
mkdirSync(join(process.cwd(), '.bench-tmp'), { recursive: true });
const tmp = mkdtempSync(join(process.cwd(), '.bench-tmp', 'ops-'));
const now = (): bigint => process.hrtime.bigint();
const sec = (t: bigint): number => Number(now() - t) / 1e9;

const keys = userKeys(N);
const bkeys = keys.map((k) => Buffer.from(k, 'latin1'));
const values = randomValues(N, 100, 42, 1);
const order = permutation(N, 42, 2);
const gets = randomIndices(Math.max(N, 100000), N, 42, 3);
const seeks = randomIndices(20000, N, 42, 4);

interface Impl {
  putBatch(idx: ArrayLike<number>, from: number, to: number): Promise<void>;
  get(i: number): unknown;
  scan(): number;
  seek(i: number, n: number): number;
  putBig(vals: Buffer[], from: number, to: number, base: number): Promise<void>;
  close(): Promise<void>;
}

async function forest(dir: string): Promise<Impl> {
  const db = await open(join(dir, 'f.forest'), { size: '8GiB', durability: 'sync' });
  const s = db.store('bench');
  return {
    async putBatch(idx, from, to) {
      const p: Promise<unknown>[] = [];
      for (let i = from; i < to; i++) p.push(s.put(keys[idx[i]!]!, values[idx[i]!]!));
      await Promise.all(p);
    },
    get: (i) => s.get(keys[i]!),
    scan() {
      let n = 0;
      for (const _ of s.range({})) n++;
      return n;
    },
    seek(i, len) {
      let n = 0;
      for (const _ of s.range({ gte: keys[i]!, limit: len })) n++;
      return n;
    },
    async putBig(vals, from, to, base) {
      const p: Promise<unknown>[] = [];
      for (let i = from; i < to; i++) p.push(s.put(`big:${String(base + i).padStart(9, '0')}`, vals[i % vals.length]!));
      await Promise.all(p);
    },
    close: () => db.close(),
  };
}

async function lmdb(dir: string): Promise<Impl> {
  const db = lmdbOpen<Buffer, Buffer>({ path: join(dir, 'l'), keyEncoding: 'binary', encoding: 'binary', mapSize: 16 * 1024 ** 3 });
  return {
    async putBatch(idx, from, to) {
      await db.transaction(() => {
        for (let i = from; i < to; i++) void db.put(bkeys[idx[i]!]!, values[idx[i]!]!);
      });
      await db.flushed;
    },
    get: (i) => db.get(bkeys[i]!),
    scan() {
      let n = 0;
      for (const _ of db.getRange({})) n++;
      return n;
    },
    seek(i, len) {
      let n = 0;
      for (const _ of db.getRange({ start: bkeys[i]!, limit: len })) n++;
      return n;
    },
    async putBig(vals, from, to, base) {
      await db.transaction(() => {
        for (let i = from; i < to; i++) void db.put(Buffer.from(`big:${String(base + i).padStart(9, '0')}`), vals[i % vals.length]!);
      });
      await db.flushed;
    },
    async close() {
      await db.flushed;
      await db.close();
    },
  };
}

const identity = { length: N } as ArrayLike<number>;
const ident = new Proxy(identity, { get: (t, p) => (p === 'length' ? N : Number(p)) }) as ArrayLike<number>;

async function run(name: string, make: (dir: string) => Promise<Impl>): Promise<Record<string, number>> {
  const r: Record<string, number> = {};
  if (which.has('load-seq')) {
    const dir = mkdtempSync(join(tmp, name + '-'));
    const a = await make(dir);
    const t = now();
    for (let i = 0; i < N; i += 1000) await a.putBatch(ident, i, Math.min(N, i + 1000));
    r['load-seq'] = N / sec(t);
    await a.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const dir = mkdtempSync(join(tmp, name + '-'));
  const a = await make(dir);
  {
    const t = now();
    for (let i = 0; i < N; i += 1000) await a.putBatch(order, i, Math.min(N, i + 1000));
    if (which.has('load-rand')) r['load-rand'] = N / sec(t);
  }
  if (which.has('get')) {
    for (let i = 0; i < 5000; i++) a.get(gets[i]!);
    const t = now();
    for (let i = 0; i < gets.length; i++) a.get(gets[i]!);
    r.get = gets.length / sec(t);
  }
  if (which.has('scan')) {
    a.scan();
    const t = now();
    const reps = 3;
    for (let i = 0; i < reps; i++) a.scan();
    r.scan = (reps * N) / sec(t);
  }
  if (which.has('seek')) {
    const t = now();
    for (let i = 0; i < seeks.length; i++) a.seek(seeks[i]!, 10);
    r.seek = seeks.length / sec(t);
  }
  if (which.has('big')) {
    const total = Number(process.env.BIG_MIB ?? 256) * 2 ** 20;
    const count = total / 65536;
    const vals = randomValues(64, 65536, 42, 11);
    const t = now();
    for (let i = 0; i < count; i += 256) await a.putBig(vals, i, Math.min(count, i + 256), 0);
    r['big MB/s'] = total / 1e6 / sec(t);
  }
  await a.close();
  rmSync(dir, { recursive: true, force: true });
  return r;
}

try {
  const f = only === 'lmdb' ? {} : await run('forestfs', forest);
  const l = only === 'forestfs' ? {} : await run('lmdb', lmdb);
  for (const k of new Set([...Object.keys(f), ...Object.keys(l)])) {
    const fv = f[k];
    const lv = l[k];
    console.log(`${k.padEnd(10)} forestfs ${fv ? fv.toFixed(0).padStart(9) : '        -'}  lmdb ${lv ? lv.toFixed(0).padStart(9) : '        -'}  ratio ${fv && lv ? (fv / lv).toFixed(2) : '-'}`);
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
