// classic-level (LevelDB). Durable mode: every batch/put written with `{ sync: true }` (LevelDB
// fsyncs its log). No-sync mode: the default `{ sync: false }`. Other options are the defaults
// (4 MiB write buffer, 8 MiB block cache, Snappy compression — the random values do not compress).
import { ClassicLevel } from 'classic-level';
import { packageVersion } from '../sysinfo.js';
import type { AdapterFactory, Key, Mode, StoreAdapter } from '../types.js';
import { sink } from './util.js';

type DB = ClassicLevel<Buffer, Buffer>;

const ENC = { keyEncoding: 'buffer', valueEncoding: 'buffer' } as const;
const LOWEST = Buffer.alloc(0);
/** All generated keys are ASCII, so one 0xff byte sorts after every key. */
const HIGHEST = Buffer.from([0xff]);

class ClassicLevelAdapter implements StoreAdapter {
  readonly store = 'classic-level';
  readonly keyKind = 'buffer' as const;
  readonly compactLabel = 'compactRange over the whole key range';
  readonly notes = [
    'classic-level: scan and seek go through the async iterator (nextv in chunks of 1,000); there is no sync iterator.',
  ];
  private db: DB | null = null;

  constructor(
    readonly mode: Mode,
    readonly dir: string,
  ) {}

  private get writeOpts(): { sync: boolean } {
    return { sync: this.mode === 'durable' };
  }

  settings(): Record<string, unknown> {
    return { ...ENC, writeOptions: this.writeOpts, other: 'library defaults (writeBufferSize 4 MiB, cacheSize 8 MiB, compression true)' };
  }

  async open(): Promise<void> {
    this.db = new ClassicLevel<Buffer, Buffer>(this.dir, ENC);
    await this.db.open();
  }

  private get d(): DB {
    if (!this.db) throw new Error('classic-level adapter not open');
    return this.db;
  }

  async putBatch(entries: ReadonlyArray<readonly [Key, Buffer]>): Promise<void> {
    const ops = new Array<{ type: 'put'; key: Buffer; value: Buffer }>(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i] as readonly [Key, Buffer];
      ops[i] = { type: 'put', key: e[0] as Buffer, value: e[1] };
    }
    await this.d.batch(ops, this.writeOpts);
  }

  async putOne(key: Key, value: Buffer): Promise<void> {
    await this.d.put(key as Buffer, value, this.writeOpts);
  }

  readonly get = (key: Key): Uint8Array | undefined => this.d.getSync(key as Buffer);

  readonly getAsync = (key: Key): Promise<Uint8Array | undefined> => this.d.get(key as Buffer);

  async scan(): Promise<number> {
    const it = this.d.iterator();
    let n = 0;
    let bytes = 0;
    try {
      for (;;) {
        const chunk = await it.nextv(1000);
        if (chunk.length === 0) break;
        for (const [k, v] of chunk) bytes += k.length + v.length;
        n += chunk.length;
      }
    } finally {
      await it.close();
    }
    sink(bytes);
    return n;
  }

  async seek(key: Key, n: number): Promise<number> {
    const it = this.d.iterator({ gte: key as Buffer, limit: n });
    try {
      const chunk = await it.nextv(n);
      let bytes = 0;
      for (const [k, v] of chunk) bytes += k.length + v.length;
      sink(bytes);
      return chunk.length;
    } finally {
      await it.close();
    }
  }

  readonly compact = async (): Promise<void> => {
    await this.d.compactRange(LOWEST, HIGHEST);
  };

  async close(): Promise<void> {
    if (this.db) {
      await this.db.close();
      this.db = null;
    }
  }
}

export const classicLevelFactory: AdapterFactory = {
  store: 'classic-level',
  packageName: 'classic-level',
  packageVersion: packageVersion('classic-level'),
  create: (mode, dir) => new ClassicLevelAdapter(mode, dir),
};
