// ForestFS, written against the public API in /work/shared/DESIGN.md:
//   const db = await open(path, { size: '8GiB', durability: 'sync' | 'relaxed' });
//   const store = db.store('bench');
//   await store.put(k, v)            // writes issued in one event-loop turn share one durable commit
//   await db.transaction(tx => { const t = tx.store('bench'); t.put(k, v); ... })  // one atomic commit
//   store.get(k)                     // sync
//   await store.getAsync(k)
//   store.range({ gte, limit })      // sync iterable of [key, value]
//   await db.transaction(tx => {...}); await db.compact(); db.stats(); await db.close();
//
// It is registered only when `src/index.ts` exports `open` (checked at run time by
// loadForestFs()); until the engine exists the runner prints that ForestFS was skipped.
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageVersion } from '../sysinfo.js';
import type { AdapterFactory, Key, Mode, StoreAdapter } from '../types.js';
import { sink } from './util.js';

// Structural types for the parts of the API used here, so this file type-checks whether or not
// the engine is built yet (the import below is dynamic).
interface ForestStore {
  put(key: Key, value: Buffer): Promise<unknown>;
  get(key: Key): unknown;
  getAsync(key: Key): Promise<unknown>;
  range(options: { gte?: Key; limit?: number }): Iterable<readonly [unknown, unknown]>;
}
interface ForestTx {
  store(name: string): { put(key: Key, value: Buffer): void };
}
interface ForestDb {
  store(name: string): ForestStore;
  transaction(fn: (tx: ForestTx) => unknown): Promise<unknown>;
  compact(options?: unknown): Promise<unknown>;
  stats(): unknown;
  close(): Promise<unknown>;
}
type OpenFn = (path: string, options: { size: string; durability: 'sync' | 'relaxed' }) => Promise<ForestDb>;

const IMAGE_SIZE = '8GiB';

function byteLength(x: unknown): number {
  if (typeof x === 'string') return x.length;
  if (x instanceof Uint8Array) return x.length;
  return x === undefined || x === null ? 0 : 1;
}

class ForestFsAdapter implements StoreAdapter {
  readonly store = 'forestfs';
  /** The documented examples use string keys; the runner converts keys before timing. */
  readonly keyKind = 'string' as const;
  readonly compactLabel: string;
  /** null when this build of the engine has no db.compact(): reported N/A, like lmdb. */
  readonly compact: (() => Promise<void>) | null;
  readonly notes = [
    'forestfs: putBatch is one db.transaction (one atomic, durable commit), as lmdb\'s and better-sqlite3\'s batches are transactions and classic-level\'s a batch(); bench/engine-load.ts measures batches of separate put() promises (group commit).',
  ];
  private db: ForestDb | null = null;
  private s: ForestStore | null = null;

  constructor(
    private readonly openFn: OpenFn,
    readonly mode: Mode,
    readonly dir: string,
    canCompact: boolean,
  ) {
    this.compactLabel = canCompact ? 'db.compact()' : 'none (db.compact() not implemented yet)';
    this.compact = canCompact
      ? async () => {
        if (!this.db) throw new Error('forestfs adapter not open');
        await this.db.compact();
      }
      : null;
  }

  private get durability(): 'sync' | 'relaxed' {
    return this.mode === 'durable' ? 'sync' : 'relaxed';
  }

  settings(): Record<string, unknown> {
    return { image: 'bench.forest', size: IMAGE_SIZE, durability: this.durability, store: 'bench', keys: 'string' };
  }

  async open(): Promise<void> {
    this.db = await this.openFn(join(this.dir, 'bench.forest'), { size: IMAGE_SIZE, durability: this.durability });
    this.s = this.db.store('bench');
  }

  private get st(): ForestStore {
    if (!this.s) throw new Error('forestfs adapter not open');
    return this.s;
  }

  async putBatch(entries: ReadonlyArray<readonly [Key, Buffer]>): Promise<void> {
    if (!this.db) throw new Error('forestfs adapter not open');
    await this.db.transaction((tx) => {
      const t = tx.store('bench');
      for (const [k, v] of entries) t.put(k, v);
    });
  }

  async putOne(key: Key, value: Buffer): Promise<void> {
    await this.st.put(key, value);
  }

  readonly get = (key: Key): Uint8Array | undefined => this.st.get(key) as Uint8Array | undefined;

  readonly getAsync = async (key: Key): Promise<Uint8Array | undefined> => (await this.st.getAsync(key)) as Uint8Array | undefined;

  scan(): number {
    let n = 0;
    let bytes = 0;
    for (const [k, v] of this.st.range({})) {
      bytes += byteLength(k) + byteLength(v);
      n++;
    }
    sink(bytes);
    return n;
  }

  seek(key: Key, n: number): number {
    let c = 0;
    let bytes = 0;
    for (const [k, v] of this.st.range({ gte: key, limit: n })) {
      bytes += byteLength(k) + byteLength(v);
      c++;
    }
    sink(bytes);
    return c;
  }

  stats(): unknown {
    return this.db?.stats();
  }

  async close(): Promise<void> {
    if (this.db) {
      await this.db.close();
      this.db = null;
      this.s = null;
    }
  }
}

export type ForestFsLoad = { factory: AdapterFactory } | { skipped: string };

/**
 * Import src/index.ts; register ForestFS only if it exports `open`. The environment variable
 * BENCH_FORESTFS_MODULE (a path) replaces src/index.ts, e.g. to measure the compiled
 * dist/index.js or to exercise this adapter against a stand-in.
 */
export async function loadForestFs(): Promise<ForestFsLoad> {
  // A computed specifier keeps tsc from type-checking the engine's sources as part of bench/.
  const override = process.env.BENCH_FORESTFS_MODULE;
  const spec = override ? pathToFileURL(resolve(override)).href : new URL('../../../src/index.js', import.meta.url).href;
  let m: { open?: unknown; VERSION?: unknown; Database?: { prototype?: { compact?: unknown } } };
  try {
    m = (await import(spec)) as typeof m;
  } catch (err) {
    return { skipped: `ForestFS skipped: importing src/index.ts failed (${(err as Error).message.split('\n')[0]})` };
  }
  if (typeof m.open !== 'function') {
    return { skipped: `ForestFS skipped: the engine is not built yet (${override ?? 'src/index.ts'} does not export open()).` };
  }
  const openFn = m.open as OpenFn;
  // packageVersion('..') reads the repository's own package.json.
  const version = typeof m.VERSION === 'string' ? m.VERSION : packageVersion('..');
  return {
    factory: {
      store: 'forestfs',
      packageName: 'forestfs (this repo, src/)',
      packageVersion: version,
      create: (mode, dir) => new ForestFsAdapter(openFn, mode, dir, typeof m.Database?.prototype?.compact === 'function'),
    },
  };
}
