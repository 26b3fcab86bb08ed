// better-sqlite3 (SQLite). One table `kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID` in WAL mode.
// Durable mode: `synchronous=FULL` (every commit fsyncs the WAL). No-sync mode: `synchronous=OFF`.
// Everything else is SQLite's default (4 KiB pages, 2 MiB page cache, no mmap, autocheckpoint at
// 1,000 pages). SQLite is synchronous only: there is no async get.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageVersion } from '../sysinfo.js';
import type { AdapterFactory, Key, Mode, StoreAdapter } from '../types.js';
import { sink } from './util.js';

// better-sqlite3 ships no types and @types/better-sqlite3 is not installed: the few calls used.
interface Statement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown>;
  pluck(on?: boolean): Statement;
  raw(on?: boolean): Statement;
}
interface Database {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  prepare(source: string): Statement;
  exec(source: string): Database;
  transaction<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void;
  close(): void;
}
type DatabaseCtor = new (filename: string, options?: Record<string, unknown>) => Database;

const require = createRequire(import.meta.url);
let Ctor: DatabaseCtor | undefined;
function ctor(): DatabaseCtor {
  Ctor ??= require('better-sqlite3') as DatabaseCtor;
  return Ctor;
}

class SqliteAdapter implements StoreAdapter {
  readonly store = 'better-sqlite3';
  readonly keyKind = 'buffer' as const;
  readonly getAsync = null;
  readonly compactLabel = 'VACUUM + PRAGMA wal_checkpoint(TRUNCATE)';
  readonly notes = [
    'better-sqlite3: synchronous API only (async get N/A); table WITHOUT ROWID, WAL mode in both modes; other pragmas default.',
  ];
  private db: Database | null = null;
  private sGet!: Statement;
  private sPut!: Statement;
  private sScan!: Statement;
  private sSeek!: Statement;
  private txPut!: (entries: ReadonlyArray<readonly [Key, Buffer]>) => void;

  constructor(
    readonly mode: Mode,
    readonly dir: string,
  ) {}

  private get synchronous(): string {
    return this.mode === 'durable' ? 'FULL' : 'OFF';
  }

  settings(): Record<string, unknown> {
    return {
      file: 'data.sqlite',
      journal_mode: 'WAL',
      synchronous: this.synchronous,
      table: 'kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID',
      other: 'SQLite defaults (page_size 4096, cache_size -2000, mmap_size 0, wal_autocheckpoint 1000)',
    };
  }

  async open(): Promise<void> {
    const Database = ctor();
    const db = new Database(join(this.dir, 'data.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${this.synchronous}`);
    db.exec('CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID');
    this.sGet = db.prepare('SELECT v FROM kv WHERE k = ?').pluck();
    this.sPut = db.prepare('INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)');
    this.sScan = db.prepare('SELECT k, v FROM kv ORDER BY k').raw();
    this.sSeek = db.prepare('SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?').raw();
    const put = this.sPut;
    this.txPut = db.transaction((entries: ReadonlyArray<readonly [Key, Buffer]>) => {
      for (const [k, v] of entries) put.run(k, v);
    });
    this.db = db;
  }

  async putBatch(entries: ReadonlyArray<readonly [Key, Buffer]>): Promise<void> {
    this.txPut(entries);
  }

  async putOne(key: Key, value: Buffer): Promise<void> {
    this.sPut.run(key, value);
  }

  readonly get = (key: Key): Uint8Array | undefined => this.sGet.get(key) as Buffer | undefined;

  scan(): number {
    let n = 0;
    let bytes = 0;
    for (const row of this.sScan.iterate()) {
      const [k, v] = row as [Buffer, Buffer];
      bytes += k.length + v.length;
      n++;
    }
    sink(bytes);
    return n;
  }

  seek(key: Key, n: number): number {
    const rows = this.sSeek.all(key, n) as [Buffer, Buffer][];
    let bytes = 0;
    for (const [k, v] of rows) bytes += k.length + v.length;
    sink(bytes);
    return rows.length;
  }

  readonly compact = async (): Promise<void> => {
    const db = this.db;
    if (!db) throw new Error('better-sqlite3 adapter not open');
    db.exec('VACUUM');
    db.pragma('wal_checkpoint(TRUNCATE)');
  };

  async close(): Promise<void> {
    if (this.db) {
      this.db.close();
      this.db = null;
    }
  }
}

export const betterSqlite3Factory: AdapterFactory = {
  store: 'better-sqlite3',
  packageName: 'better-sqlite3',
  packageVersion: packageVersion('better-sqlite3'),
  create: (mode, dir) => new SqliteAdapter(mode, dir),
};
