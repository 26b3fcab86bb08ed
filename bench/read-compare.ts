// The suite's read workloads on ForestFS and lmdb in one process, alternating, so that the
// ratio is measured in the same minutes on a noisy machine:
//   random sync get (200,000 gets), full ordered scan, seek + read 10 (20,000 seeks).
// Data as in the suite: N keys `user:%09d` (strings for ForestFS, Buffers for lmdb), 100-byte
// random values, loaded in a random order in batches of 1,000. Like the suite, no explicit
// checkpoint after the load (whatever the WAL holds stays there); `--checkpoint` flushes it.
//   npx tsx bench/read-compare.ts [keys=200000] [rounds=5] [--checkpoint] [--only get,scan,seek]
// Prints per round and the medians: ops/s (entries/s for scan) and ForestFS ÷ lmdb.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { open as lmdbOpen } from 'lmdb';
import { open } from '../src/index.js';
import { permutation, randomIndices, randomValues, userKeys } from './suite/data.js';

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--') && !a.includes('=')));
const onlyArg = args.find((a, i) => args[i - 1] === '--only') ?? 'get,scan,seek';
const pos = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--only');
const N = Number(pos[0] ?? 200000);
const ROUNDS = Number(pos[1] ?? 5);
const only = new Set(onlyArg.split(','));

const keys = userKeys(N);
const bkeys = keys.map((k) => Buffer.from(k, 'latin1'));
const values = randomValues(N, 100, 42, 1);
const order = permutation(N, 42, 2);
const gets = randomIndices(200000, N, 42, 3);
const seeks = randomIndices(20000, N, 42, 4);
mkdirSync(join(process.cwd(), '.bench-tmp'), { recursive: true });
const tmp = mkdtempSync(join(process.cwd(), '.bench-tmp', 'cmp-'));
const now = (): bigint => process.hrtime.bigint();
let sinkv = 0;

function len(x: unknown): number {
  if (typeof x === 'string') return x.length;
  if (x instanceof Uint8Array) return x.length;
  return x === undefined || x === null ? 0 : 1;
}

interface Side {
  get(): void;
  scan(): void;
  seek(): void;
}

try {
  const db = await open(join(tmp, 'f.forest'), { size: '8GiB', durability: 'relaxed' });
  const fs = db.store('bench');
  const ldb = lmdbOpen<Buffer, Buffer>({ path: join(tmp, 'lmdb'), keyEncoding: 'binary', encoding: 'binary', mapSize: 16 * 1024 ** 3, noSync: true });
  for (let i = 0; i < N; i += 1000) {
    const p: Promise<unknown>[] = [];
    const end = Math.min(N, i + 1000);
    for (let j = i; j < end; j++) p.push(fs.put(keys[order[j]!]!, values[order[j]!]!));
    await Promise.all(p);
    await ldb.transaction(() => {
      for (let j = i; j < end; j++) void ldb.put(bkeys[order[j]!]!, values[order[j]!]!);
    });
  }
  if (flags.has('--checkpoint')) await db.checkpoint();
  console.log(`${N} keys; ForestFS WAL entries after load: ${db.stats().walEntries}${flags.has('--checkpoint') ? ' (checkpointed)' : ''}`);

  const forest: Side = {
    get() {
      let found = 0;
      for (let i = 0; i < gets.length; i++) if (fs.get(keys[gets[i]!]!) !== undefined) found++;
      if (found !== gets.length) throw new Error(`forestfs found ${found}`);
    },
    scan() {
      let n = 0;
      let bytes = 0;
      for (const [k, v] of fs.range({})) {
        bytes += len(k) + len(v);
        n++;
      }
      if (n !== N) throw new Error(`forestfs scanned ${n}`);
      sinkv += bytes;
    },
    seek() {
      let bytes = 0;
      for (let i = 0; i < seeks.length; i++) {
        for (const [k, v] of fs.range({ gte: keys[seeks[i]!]!, limit: 10 })) bytes += len(k) + len(v);
      }
      sinkv += bytes;
    },
  };
  const lmdb: Side = {
    get() {
      let found = 0;
      for (let i = 0; i < gets.length; i++) if (ldb.get(bkeys[gets[i]!]!) !== undefined) found++;
      if (found !== gets.length) throw new Error(`lmdb found ${found}`);
    },
    scan() {
      let n = 0;
      let bytes = 0;
      for (const { key, value } of ldb.getRange({})) {
        bytes += key.length + value.length;
        n++;
      }
      if (n !== N) throw new Error(`lmdb scanned ${n}`);
      sinkv += bytes;
    },
    seek() {
      let bytes = 0;
      for (let i = 0; i < seeks.length; i++) {
        for (const { key, value } of ldb.getRange({ start: bkeys[seeks[i]!]!, limit: 10 })) bytes += key.length + value.length;
      }
      sinkv += bytes;
    },
  };
  const work = (['get', 'scan', 'seek'] as const).filter((w) => only.has(w));
  const ops = { get: gets.length, scan: N, seek: seeks.length };
  const res: Record<string, { f: number[]; l: number[] }> = {};
  for (const w of work) res[w] = { f: [], l: [] };
  const time = (f: () => void): number => {
    const t = now();
    f();
    return Number(now() - t);
  };
  // Warm-up: one untimed pass of everything on both.
  for (const w of work) {
    forest[w]();
    lmdb[w]();
  }
  for (let r = 0; r < ROUNDS; r++) {
    const line: string[] = [];
    for (const w of work) {
      // Alternate which side goes first.
      let fNs: number;
      let lNs: number;
      if (r % 2 === 0) {
        fNs = time(forest[w]);
        lNs = time(lmdb[w]);
      } else {
        lNs = time(lmdb[w]);
        fNs = time(forest[w]);
      }
      const f = (ops[w] / fNs) * 1e9;
      const l = (ops[w] / lNs) * 1e9;
      res[w]!.f.push(f);
      res[w]!.l.push(l);
      line.push(`${w} ${fmt(f)}/${fmt(l)} ${(f / l).toFixed(2)}`);
    }
    console.log(`round ${r + 1}: ${line.join('  ')}`);
  }
  console.log('median of rounds (ops/s; scan: entries/s):');
  console.log(`${'workload'.padEnd(10)} ${'ForestFS'.padStart(10)} ${'lmdb'.padStart(10)} ${'ratio'.padStart(7)} ${'ratio-med'.padStart(9)}`);
  for (const w of work) {
    const f = median(res[w]!.f);
    const l = median(res[w]!.l);
    const ratios = res[w]!.f.map((x, i) => x / res[w]!.l[i]!);
    console.log(`${w.padEnd(10)} ${fmt(f).padStart(10)} ${fmt(l).padStart(10)} ${(f / l).toFixed(2).padStart(7)} ${median(ratios).toFixed(2).padStart(9)}`);
  }
  if (sinkv === 0.5) console.log('');
  await db.close();
  await ldb.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function fmt(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  return x.toFixed(0);
}
