// Command-line options of bench/run.ts.
import { resolve, join } from 'node:path';
import { REPO_ROOT } from './sysinfo.js';
import type { Mode } from './types.js';

export const WORKLOADS = [
  'load-seq',
  'load-rand',
  'get',
  'scan',
  'seek',
  'overwrite',
  'space',
  'small-put',
  'big-values',
  'long-keys',
] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface Config {
  keys: number;
  reps: number;
  batch: number;
  valueSize: number;
  bigValueSize: number;
  bigTotalBytes: number;
  /** Largest batch in bytes for big values (batch = min(batch, this / bigValueSize)). */
  bigBatchBytes: number;
  longKeys: number;
  gets: number;
  getSample: number;
  asyncGets: number;
  seeks: number;
  seekLen: number;
  smallPuts: number;
  commitFloorOps: number;
  bwFloorMiB: number;
  seed: number;
  only: string[] | null;
  workloads: Set<WorkloadName>;
  modes: Mode[];
  json: string | null;
  rawSamples: boolean;
  tmp: string;
  quick: boolean;
}

export const HELP = `ForestFS benchmark suite: the same workloads on ForestFS, lmdb, classic-level and
better-sqlite3, in one process, each store in its durable mode and (labelled) its no-sync mode.

Usage: npx tsx bench/run.ts [options]        (npm run bench -- [options])

Stores and modes
  durable   lmdb: default options (overlappingSync), each write awaited plus db.flushed
            classic-level: batch/put with { sync: true }
            better-sqlite3: WAL, synchronous=FULL
            forestfs: open(..., { durability: 'sync' })
  nosync    lmdb: noSync: true; classic-level: default { sync: false };
            better-sqlite3: WAL, synchronous=OFF; forestfs: durability 'relaxed'
  ForestFS takes part only when src/index.ts exports open(); otherwise it is skipped with a message.

Workloads (--workloads, comma-separated; default all)
  load-seq    load --keys keys in key order, one durable batch (transaction) per --batch puts
  load-rand   the same in random order; this data set then serves get/scan/seek/overwrite/space/small-put
  get         random sync get, warm: throughput over --gets calls, p50/p99 over --get-sample calls;
              then awaited async gets (--async-gets), one at a time, with p50/p99 (N/A if none)
  scan        full ordered scan (entries/s)
  seek        --seeks times: seek to a random key and read --seek-len entries
  overwrite   overwrite half the keys (random order, durable batches)
  space       after overwrite and close: bytes on device (st_blocks*512, and apparent size),
              space amplification (device / live user bytes), write amplification over
              load-rand..close divided by user bytes written: /proc/self/io write_bytes -
              cancelled_write_bytes, wchar, and device-wide sectors written (after syncfs); then
              compaction where the store has one, and space again (labelled)
  small-put   --small-puts times: one put + commit (durable in durable mode), p50/p99, beside the
              commit floor
  big-values  values of --big-value-size (64 KiB) up to --big-total bytes, MB/s beside the bandwidth floor
  long-keys   --long-keys file-path keys (40-200 bytes, deep shared prefixes): load, random get, scan

Device floors (measured every repetition, in the same run)
  commit floor     4 KiB O_DIRECT write + fdatasync, p50/p99 over --commit-floor-ops ops
  bandwidth floor  sequential 1 MiB O_DIRECT writes, MB/s over --bw-floor bytes
  bench/suite/floor.c is compiled with cc into the scratch directory; without cc, dd oflag=direct
  is used and labelled FALLBACK.

Options
  --quick                short run: 20,000 keys, 1 repetition, 64 MiB of big values, smaller samples
  --reps N               repetitions (default 3); the store order rotates every repetition
  --keys N               keys for load/get/scan/... (default 200,000; keys are user:%09d)
  --value-size N         value bytes (default 100)
  --batch N              puts per batch/transaction (default 1,000)
  --long-keys N          long-key count (default: --keys)
  --big-value-size N     big value bytes (default 65536)
  --big-total SIZE       total big-value bytes (default 1GiB; quick 64MiB); SIZE accepts KiB/MiB/GiB
  --gets N               sync gets timed for throughput (default: --keys)
  --get-sample N         sync gets timed one by one for p50/p99 (default 20,000; quick 5,000)
  --async-gets N         awaited async gets (default 50,000; quick 5,000)
  --seeks N              seek-and-read operations (default 20,000; quick 5,000)
  --seek-len N           entries read per seek (default 10)
  --small-puts N         single durable puts (default 2,000; quick 300)
  --commit-floor-ops N   ops for the commit floor (default 2,000; quick 500)
  --bw-floor SIZE        bytes for the bandwidth floor (default 1GiB; quick 64MiB)
  --seed N               PRNG seed for keys, values and orders (default 42)
  --only a,b             stores to run: forestfs, lmdb, classic-level, better-sqlite3
  --workloads a,b        workloads to run (see above); prerequisites run untimed when needed
  --modes a,b            durable, nosync (default both)
  --json FILE            write every raw figure, the machine, package versions and settings
  --raw-samples          also put every per-call latency sample into the JSON (large)
  --tmp DIR              scratch directory (default <repo>/.bench-tmp; must be on the file system
                         you want to measure); a per-run subdirectory is deleted at the end
  --help                 this text

Output: progress on stderr; medians, ratios and ForestFS targets on stdout.
Chart: npx tsx bench/chart.ts FILE.json  -> bench/results/chart.svg and bench/results/table.md
`;

export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(s.trim());
  if (!m) throw new Error(`bad size: ${s}`);
  const n = Number(m[1]);
  const u = (m[2] ?? 'b').toLowerCase();
  const mult = u.startsWith('k') ? 1024 : u.startsWith('m') ? 1024 ** 2 : u.startsWith('g') ? 1024 ** 3 : 1;
  return Math.round(n * mult);
}

function int(name: string, v: string | undefined): number {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < 0) throw new Error(`${name} needs a non-negative integer, got ${v}`);
  return n;
}

export function parseArgs(argv: string[]): Config | 'help' {
  const quick = argv.includes('--quick');
  const c: Config = {
    keys: quick ? 20_000 : 200_000,
    reps: quick ? 1 : 3,
    batch: 1000,
    valueSize: 100,
    bigValueSize: 65536,
    bigTotalBytes: quick ? 64 * 1024 ** 2 : 1024 ** 3,
    bigBatchBytes: 16 * 1024 ** 2,
    longKeys: -1,
    gets: -1,
    getSample: quick ? 5_000 : 20_000,
    asyncGets: quick ? 5_000 : 50_000,
    seeks: quick ? 5_000 : 20_000,
    seekLen: 10,
    smallPuts: quick ? 300 : 2_000,
    commitFloorOps: quick ? 500 : 2_000,
    bwFloorMiB: quick ? 64 : 1024,
    seed: 42,
    only: null,
    workloads: new Set(WORKLOADS),
    modes: ['durable', 'nosync'],
    json: null,
    rawSamples: false,
    tmp: join(REPO_ROOT, '.bench-tmp'),
    quick,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    let [flag, val] = a.includes('=') ? (a.split(/=(.*)/s, 2) as [string, string]) : [a, undefined as string | undefined];
    const next = (): string => {
      if (val !== undefined) return val;
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--help':
      case '-h':
        return 'help';
      case '--quick':
        break;
      case '--reps': c.reps = Math.max(1, int(flag, next())); break;
      case '--keys': c.keys = int(flag, next()); break;
      case '--value-size': c.valueSize = int(flag, next()); break;
      case '--batch': c.batch = Math.max(1, int(flag, next())); break;
      case '--long-keys': c.longKeys = int(flag, next()); break;
      case '--big-value-size': c.bigValueSize = int(flag, next()); break;
      case '--big-total': c.bigTotalBytes = parseSize(next()); break;
      case '--gets': c.gets = int(flag, next()); break;
      case '--get-sample': c.getSample = int(flag, next()); break;
      case '--async-gets': c.asyncGets = int(flag, next()); break;
      case '--seeks': c.seeks = int(flag, next()); break;
      case '--seek-len': c.seekLen = Math.max(1, int(flag, next())); break;
      case '--small-puts': c.smallPuts = int(flag, next()); break;
      case '--commit-floor-ops': c.commitFloorOps = Math.max(1, int(flag, next())); break;
      case '--bw-floor': c.bwFloorMiB = Math.max(1, Math.round(parseSize(next()) / 1024 ** 2)); break;
      case '--seed': c.seed = int(flag, next()); break;
      case '--only': c.only = next().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--workloads': {
        const names = next().split(',').map((s) => s.trim()).filter(Boolean);
        for (const n of names) if (!(WORKLOADS as readonly string[]).includes(n)) throw new Error(`unknown workload ${n}; known: ${WORKLOADS.join(', ')}`);
        c.workloads = new Set(names as WorkloadName[]);
        break;
      }
      case '--modes': {
        const modes = next().split(',').map((s) => s.trim()).filter(Boolean);
        for (const m of modes) if (m !== 'durable' && m !== 'nosync') throw new Error(`unknown mode ${m}; known: durable, nosync`);
        c.modes = modes as Mode[];
        break;
      }
      case '--json': c.json = resolve(next()); break;
      case '--raw-samples': c.rawSamples = true; break;
      case '--tmp': c.tmp = resolve(next()); break;
      default:
        throw new Error(`unknown option ${a} (see --help)`);
    }
  }
  if (c.longKeys < 0) c.longKeys = c.keys;
  if (c.gets < 0) c.gets = c.keys;
  if (c.keys < 2) throw new Error('--keys must be at least 2');
  return c;
}
