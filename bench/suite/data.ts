// Deterministic data sets: keys, values, orders, long path-like keys, and 64 KiB values.
import { Prng } from './prng.js';
import type { Key } from './types.js';

/** Independent PRNG streams derived from the one --seed. */
export const Stream = {
  values: 1,
  order: 2,
  gets: 3,
  seeks: 4,
  overwrite: 5,
  overwriteValues: 6,
  smallPut: 7,
  longKeys: 8,
  longValues: 9,
  longGets: 10,
  bigPool: 11,
  bigOffsets: 12,
} as const;

export function userKey(i: number): string {
  return 'user:' + String(i).padStart(9, '0');
}

/** `user:%09d` for i in [0, n). */
export function userKeys(n: number): string[] {
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) out[i] = userKey(i);
  return out;
}

/** n random values of `size` bytes, as views into one buffer. */
export function randomValues(n: number, size: number, seed: number, stream: number): Buffer[] {
  const rng = new Prng(seed, stream);
  const all = Buffer.allocUnsafe(n * size);
  rng.fill(all);
  const out = new Array<Buffer>(n);
  for (let i = 0; i < n; i++) out[i] = all.subarray(i * size, (i + 1) * size);
  return out;
}

/** A permutation of [0, n). */
export function permutation(n: number, seed: number, stream: number): Uint32Array {
  const arr = new Array<number>(n);
  for (let i = 0; i < n; i++) arr[i] = i;
  new Prng(seed, stream).shuffle(arr);
  return Uint32Array.from(arr);
}

/** `count` uniform random indices in [0, n). */
export function randomIndices(count: number, n: number, seed: number, stream: number): Uint32Array {
  const rng = new Prng(seed, stream);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = rng.int(n);
  return out;
}

/** Convert keys to what an adapter wants. Keys here are ASCII, so latin1 is exact. */
export function prepareKeys(keys: readonly string[], kind: 'buffer' | 'string'): Key[] {
  if (kind === 'string') return keys.slice();
  const out = new Array<Key>(keys.length);
  for (let i = 0; i < keys.length; i++) out[i] = Buffer.from(keys[i] as string, 'latin1');
  return out;
}

const VOCAB = [
  'src', 'lib', 'node_modules', 'packages', 'internal', 'components', 'services', 'api', 'v1', 'v2',
  'handlers', 'utils', 'test', 'fixtures', 'assets', 'images', 'docs', 'build', 'dist', 'vendor',
  'github.com', 'forestfs', 'engine', 'hbtrie', 'io', 'native', 'kernel', 'drivers', 'nvme',
  'storage', 'users', 'alice', 'bob', 'projects', '2024', '2025', 'archive', 'logs', 'cache',
  'snapshots', 'modules', 'generated', 'config', 'locales', 'en-US', 'migrations', 'schemas',
];
const ROOTS = ['/home/alice', '/srv/data', '/var/lib/forestfs', '/opt/app/releases', '/usr/share/doc'];
const EXTS = ['ts', 'js', 'json', 'md', 'c', 'h', 'txt', 'png', 'log', 'bson'];
const STEMS = ['index', 'main', 'readme', 'config', 'data', 'chunk', 'part', 'segment', 'record', 'page'];

export const LONG_KEY_MIN = 40;
export const LONG_KEY_MAX = 200;

/**
 * `n` distinct file paths of 40–200 bytes that share deep directory prefixes, in a random
 * (generation) order. A directory tree is grown by extending random existing directories, so
 * many directories share long prefixes; each file name carries a unique counter.
 */
export function longKeys(n: number, seed: number): string[] {
  const rng = new Prng(seed, Stream.longKeys);
  const dirs: string[] = ROOTS.slice();
  const dirCount = Math.max(64, Math.ceil(n / 40));
  while (dirs.length < dirCount) {
    // Prefer extending recent (deeper) directories so prefixes get long.
    const parent = rng.next() < 0.7 ? (dirs[dirs.length - 1 - rng.int(Math.min(dirs.length, 50))] as string) : (dirs[rng.int(dirs.length)] as string);
    let name = VOCAB[rng.int(VOCAB.length)] as string;
    if (rng.next() < 0.4) name += '-' + rng.int(1000).toString(36);
    const d = parent + '/' + name;
    if (d.length > LONG_KEY_MAX - 24) continue;
    dirs.push(d);
  }
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    let k = '';
    for (let attempt = 0; ; attempt++) {
      const dir = dirs[rng.int(dirs.length)] as string;
      const stem = STEMS[rng.int(STEMS.length)] as string;
      const ext = EXTS[rng.int(EXTS.length)] as string;
      k = `${dir}/${stem}-${i.toString(36)}.${ext}`;
      if (k.length < LONG_KEY_MIN) k = `${dir}/${stem}-${'x'.repeat(LONG_KEY_MIN - k.length)}${i.toString(36)}.${ext}`;
      if (k.length <= LONG_KEY_MAX || attempt > 20) break;
    }
    out[i] = k.slice(0, LONG_KEY_MAX);
  }
  return out;
}

/** A pool of random bytes from which 64 KiB values are cut at deterministic, distinct offsets. */
export class BigValuePool {
  private readonly pool: Buffer;
  private readonly rng: Prng;
  constructor(
    readonly valueSize: number,
    seed: number,
    poolBytes = 16 * 1024 * 1024,
  ) {
    this.pool = Buffer.allocUnsafe(poolBytes + valueSize);
    new Prng(seed, Stream.bigPool).fill(this.pool);
    this.rng = new Prng(seed, Stream.bigOffsets);
  }
  /** Next value: a view of the pool at a random 8-byte-aligned offset (incompressible content). */
  next(): Buffer {
    const off = this.rng.int((this.pool.length - this.valueSize) >>> 3) << 3;
    return this.pool.subarray(off, off + this.valueSize);
  }
}
