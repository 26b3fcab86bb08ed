// lmdb (lmdb-js). Durable mode: the library's default (overlappingSync on Linux), where a write's
// promise resolves when the transaction is committed and `db.flushed` when it is on disk; we await
// both. No-sync mode: `noSync: true` (LMDB never calls fsync/msync).
import { open, type RootDatabase } from 'lmdb';
import { packageVersion } from '../sysinfo.js';
import { sink } from './util.js';
import type { AdapterFactory, Key, Mode, StoreAdapter } from '../types.js';

const MAP_SIZE = 16 * 1024 ** 3;

class LmdbAdapter implements StoreAdapter {
  readonly store = 'lmdb';
  readonly keyKind = 'buffer' as const;
  readonly compact = null;
  readonly compactLabel = 'none (LMDB reuses free pages; the file never shrinks in place)';
  readonly notes = [
    'lmdb: durable = default options (overlappingSync): each batch is awaited, then `db.flushed`.',
    'lmdb: getAsync is marked @experimental in lmdb-js 3.x (and rejects asynchronously with MDB_NOTFOUND for missing keys, so only present keys are read).',
    'lmdb: pages of the memory-mapped file count towards RSS.',
  ];
  private db: RootDatabase<Buffer, Buffer> | null = null;

  constructor(
    readonly mode: Mode,
    readonly dir: string,
  ) {}

  private options() {
    return {
      path: this.dir,
      keyEncoding: 'binary' as const,
      encoding: 'binary' as const,
      mapSize: MAP_SIZE,
      ...(this.mode === 'nosync' ? { noSync: true } : {}),
    };
  }

  settings(): Record<string, unknown> {
    return { ...this.options(), path: undefined, durability: this.mode === 'durable' ? 'await commit + await db.flushed (overlappingSync default)' : 'noSync: true' };
  }

  async open(): Promise<void> {
    this.db = open<Buffer, Buffer>(this.options());
  }

  private get d(): RootDatabase<Buffer, Buffer> {
    if (!this.db) throw new Error('lmdb adapter not open');
    return this.db;
  }

  async putBatch(entries: ReadonlyArray<readonly [Key, Buffer]>): Promise<void> {
    const db = this.d;
    await db.transaction(() => {
      for (const [k, v] of entries) void db.put(k as Buffer, v);
    });
    if (this.mode === 'durable') await db.flushed;
  }

  async putOne(key: Key, value: Buffer): Promise<void> {
    const db = this.d;
    await db.put(key as Buffer, value);
    if (this.mode === 'durable') await db.flushed;
  }

  readonly get = (key: Key): Uint8Array | undefined => this.d.get(key as Buffer);

  readonly getAsync = async (key: Key): Promise<Uint8Array | undefined> => {
    // Typed as returning an array in lmdb's .d.ts, but it resolves to the value.
    return (await this.d.getAsync(key as Buffer)) as unknown as Uint8Array | undefined;
  };

  scan(): number {
    let n = 0;
    let bytes = 0;
    for (const { key, value } of this.d.getRange({})) {
      n++;
      bytes += key.length + value.length;
    }
    sink(bytes);
    return n;
  }

  seek(key: Key, n: number): number {
    let c = 0;
    let bytes = 0;
    for (const { key: k, value } of this.d.getRange({ start: key as Buffer, limit: n })) {
      c++;
      bytes += k.length + value.length;
    }
    sink(bytes);
    return c;
  }

  async close(): Promise<void> {
    if (this.db) {
      if (this.mode === 'durable') await this.db.flushed;
      await this.db.close();
      this.db = null;
    }
  }
}

export const lmdbFactory: AdapterFactory = {
  store: 'lmdb',
  packageName: 'lmdb',
  packageVersion: packageVersion('lmdb'),
  create: (mode, dir) => new LmdbAdapter(mode, dir),
};
