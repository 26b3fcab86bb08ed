/**
 * The database: a log of commit frames on a block device, an HB+-trie index per store
 * persisted copy-on-write into the log, and an in-memory WAL index of what was written since
 * the last index flush (checkpoint).
 *
 * Writes issued in one event-loop turn form one commit: their records go into one frame,
 * which is written with one batch and one flush; each write's promise resolves when that
 * frame is durable. When the WAL index passes its threshold, the commit that crosses it
 * also flushes the WAL into the tries (a checkpoint) and names the new roots in its meta.
 */
import { randomBytes } from 'node:crypto';
import { ForestError } from '../errors.js';
import { HBTrie, type BatchOp, type NodeStore } from '../hbtrie/index.js';
import {
  BufferPool, openDevice, parseSize, writeBlocks,
  type BackendChoice, type BlockDevice, type DirtyBlock,
} from '../io/index.js';
import { BlockCache } from './block-cache.js';
import { decodeValue, encodeValue, keyBytes, MAX_KEY_LENGTH, type Key, type KeyBytes, type Value } from './codec.js';
import {
  decodeFrameHeader, decodeSuperblock, encodeSuperblock, FORMAT_VERSION, FRAME_CHECKPOINT, FRAME_HEADER_SIZE,
  notForestFs, SUPERBLOCKS, verifyFrameBody, type FrameHeader, type Superblock,
} from './format.js';
import { FrameBuilder, align8 } from './frame-builder.js';
import { LogReader } from './log-reader.js';
import { decodeMeta, encodeMeta, type CheckpointMeta } from './meta.js';
import {
  addressOffset, addressSize, decodeRecord, FLAG_STRING_KEY, KIND_CREATE_STORE, KIND_DELETE, KIND_PUT,
  MAX_DEVICE_BYTES, packAddress, peekRecordSize, RECORD_HEADER, recordSize, type DecodedRecord,
} from './record.js';
import { Store } from './store.js';
import { WalIndex, type WalEntry } from './wal-index.js';

export type Durability = 'sync' | 'relaxed';

export interface OpenOptions {
  /** Size of the image file to create when the path does not exist. Default '1GiB'. */
  size?: number | string;
  /** I/O backend; default 'auto' (uring, else psync, else node-fs). */
  backend?: BackendChoice;
  /** Block cache size in bytes (or '128MiB'). Default 128 MiB. */
  cacheSize?: number | string;
  /** WAL entries that trigger an index flush. Default 4096. */
  walThreshold?: number;
  /** 'sync' (default): a resolved write is durable. 'relaxed': committed without a flush. */
  durability?: Durability;
  readOnly?: boolean;
  /** Key chunk size of the HB+-trie, fixed when the store is formatted. Default 8. */
  chunkSize?: number;
  /** Largest value in bytes. Default 64 MiB (and never more than an eighth of the device). */
  maxValueSize?: number;
}

export interface DatabaseStats {
  backend: string;
  path: string;
  stores: number;
  /** Keys in the stores (exact after an index flush; WAL entries counted as new keys). */
  records: number;
  walEntries: number;
  commits: number;
  checkpoints: number;
  lastSeq: number;
  /** Bytes of records and index nodes still current. */
  liveBytes: number;
  /** Bytes superseded (reclaimable by compaction). */
  staleBytes: number;
  deviceBytes: number;
  usedBytes: number;
  freeBytes: number;
  bytesWritten: number;
  cache: { bytes: number; hits: number; misses: number; hitRate: number };
}

/** A store as the engine keeps it. */
export interface StoreState {
  readonly id: number;
  readonly name: string;
  root: number | null;
  keys: number;
  readonly wal: WalIndex;
  handle: Store | null;
}

interface PendingWrite {
  kind: number;
  store: StoreState;
  key: KeyBytes;
  valueType: number;
  value: Uint8Array;
  resolve: () => void;
  reject: (e: Error) => void;
}

const DEFAULT_SIZE = 2 ** 30;
const SMALL_VALUE = 2048;

export class Database {
  readonly path: string;
  readonly readOnly: boolean;
  readonly durability: Durability;
  private readonly device: BlockDevice;
  private readonly bs: number;
  private readonly pool: BufferPool;
  private readonly cache: BlockCache;
  private readonly reader: LogReader;
  private trie!: HBTrie;
  private readonly walThreshold: number;
  readonly maxValueSize: number;

  private sb!: Superblock;
  private uuid!: Uint8Array;
  private segmentSize = 0;
  private live: Float64Array = new Float64Array(0);
  private stale: Float64Array = new Float64Array(0);
  private readonly storesByName = new Map<string, StoreState>();
  private readonly storesById = new Map<number, StoreState>();
  private nextStoreId = 1;
  private lastSeq = 0;
  private lastCommit = 0;
  private lastFrameOffset = 0;
  private checkpointOffset = 0;
  private head = 0;
  private commits = 0;
  private checkpoints = 0;
  private bytesWritten = 0;
  /** The superblock naming the newest checkpoint, until a write has carried it. */
  private unwrittenSuperblock: Superblock | null = null;
  /** The frame being built: the NodeStore allocates index blocks in it. */
  private building: FrameBuilder | null = null;

  private queue: PendingWrite[] = [];
  private committing: Promise<void> | null = null;
  private scheduled = false;
  private failed: ForestError | null = null;
  private closed = false;
  private closing = false;

  private constructor(device: BlockDevice, opts: OpenOptions) {
    this.device = device;
    this.path = device.path;
    this.readOnly = opts.readOnly ?? device.geometry.readOnly;
    this.durability = opts.durability ?? 'sync';
    if (this.durability !== 'sync' && this.durability !== 'relaxed') {
      throw new ForestError('INVALID_ARGUMENT', `durability must be 'sync' or 'relaxed', got '${String(opts.durability)}'`);
    }
    this.bs = device.geometry.blockSize;
    this.pool = new BufferPool(device);
    this.cache = new BlockCache(parseSize(opts.cacheSize ?? 128 * 2 ** 20, 'cacheSize'), this.bs);
    this.reader = new LogReader(device, this.cache, this.pool);
    this.walThreshold = opts.walThreshold ?? 4096;
    if (!Number.isInteger(this.walThreshold) || this.walThreshold < 1) {
      throw new ForestError('INVALID_ARGUMENT', `walThreshold must be a positive integer, got ${opts.walThreshold}`);
    }
    this.maxValueSize = Math.min(opts.maxValueSize ?? 64 * 2 ** 20, Math.floor(device.geometry.capacity / 8));
  }

  /** Opens (formatting a blank device or new image first) and recovers. */
  static async open(target: string | BlockDevice, opts: OpenOptions = {}): Promise<Database> {
    const device = typeof target === 'string'
      ? openDevice(target, { size: opts.size ?? DEFAULT_SIZE, readOnly: opts.readOnly ?? false, ...(opts.backend && { backend: opts.backend }) })
      : target;
    let db: Database | undefined;
    try {
      if (device.geometry.blockSize < 4096 || device.geometry.blockSize > 65536) {
        throw new ForestError('UNSUPPORTED', `${device.path}: block size ${device.geometry.blockSize} is not supported (4096 to 65536)`);
      }
      if (device.geometry.capacity > MAX_DEVICE_BYTES) {
        throw new ForestError('UNSUPPORTED', `${device.path}: capacity above ${MAX_DEVICE_BYTES} bytes is not supported by format ${FORMAT_VERSION}`);
      }
      db = new Database(device, opts);
      await db.start(opts);
      return db;
    } catch (e) {
      if (typeof target === 'string') await device.close().catch(() => {});
      throw e;
    }
  }

  // ---------------------------------------------------------------- startup

  private async start(opts: OpenOptions): Promise<void> {
    const both = await this.reader.read(0, SUPERBLOCKS * this.bs);
    const a = decodeSuperblock(both.slice(0, this.bs));
    const b = decodeSuperblock(both.slice(this.bs, 2 * this.bs));
    if (a === 'blank' && b === 'blank') {
      if (this.readOnly) throw notForestFs(this.path, 'it is blank (open it writable once to format it)');
      await this.format(opts.chunkSize ?? 8);
    }
    const sbs = [a, b].filter((x): x is Superblock => x !== null && x !== 'blank').sort((x, y) => y.generation - x.generation);
    if (sbs.length === 0 && !(a === 'blank' && b === 'blank')) {
      throw notForestFs(this.path, 'no valid superblock in its first two blocks');
    }
    if (sbs.length > 0) await this.recover(sbs);
  }

  private async format(chunkSize: number): Promise<void> {
    const capacity = this.device.geometry.capacity;
    if (capacity < 64 * this.bs) throw new ForestError('INVALID_ARGUMENT', `${this.path}: ${capacity} bytes is too small for a store (at least ${64 * this.bs})`);
    this.uuid = new Uint8Array(randomBytes(16));
    let seg = 2 ** 20;
    while (seg < 64 * 2 ** 20 && seg * 256 < capacity) seg *= 2;
    this.segmentSize = seg;
    this.sb = {
      version: FORMAT_VERSION, blockSize: this.bs, generation: 0, capacity, logStart: SUPERBLOCKS * this.bs,
      segmentSize: seg, checkpointOffset: SUPERBLOCKS * this.bs, checkpointCommit: 1, uuid: this.uuid, chunkSize,
    };
    this.makeTrie(chunkSize);
    const segs = Math.ceil((capacity - this.sb.logStart) / seg);
    this.live = new Float64Array(segs);
    this.stale = new Float64Array(segs);
    this.addStoreState(1, 'default', null, 0);
    this.nextStoreId = 2;
    this.head = this.sb.logStart;
    this.lastCommit = 0;
    // The first checkpoint, then the superblocks that point at it: a crash in between
    // leaves blank superblocks, and the next open formats again.
    const frame = this.buildCheckpointOnly();
    await writeBlocks(this.device, this.pool, [{ offset: this.head, data: frame }], { flush: true });
    this.adoptFrame(frame, true);
    await writeBlocks(this.device, this.pool, [
      { offset: 0, data: encodeSuperblock(this.sb, this.bs) },
      { offset: this.bs, data: encodeSuperblock({ ...this.sb, generation: 1 }, this.bs) },
    ], { flush: true });
    this.sb.generation = 1;
  }

  private makeTrie(chunkSize: number): void {
    const nodeStore: NodeStore = {
      blockSize: this.bs,
      read: (addr) => {
        const block = Math.floor(addr / this.bs) * this.bs;
        return this.reader.readSync(block, this.bs).subarray(addr - block);
      },
      allocateBlocks: (count) => {
        if (!this.building) throw new ForestError('INVALID_ARGUMENT', 'index nodes can only be written during a commit');
        return this.building.allocateBlocks(count);
      },
      writeBlocks: (blocks) => {
        for (const blk of blocks) this.building!.writeBlock(blk.addr, blk.data);
      },
    };
    this.trie = new HBTrie({
      store: nodeStore,
      keyReader: (addr) => this.readRecordSync(addr).key,
      chunkSize,
      maxKeyLength: MAX_KEY_LENGTH,
    });
  }

  private async recover(sbs: Superblock[]): Promise<void> {
    let start: { sb: Superblock; header: FrameHeader; frame: Uint8Array } | null = null;
    const problems: string[] = [];
    for (const sb of sbs) {
      if (sb.version !== FORMAT_VERSION) throw new ForestError('UNSUPPORTED', `${this.path}: format version ${sb.version} is not supported (this build reads ${FORMAT_VERSION})`);
      if (sb.blockSize !== this.bs) throw new ForestError('UNSUPPORTED', `${this.path}: formatted with ${sb.blockSize}-byte blocks, the device now reports ${this.bs}`);
      const got = await this.readFrame(sb.checkpointOffset, sb.uuid);
      if (got && got.header.commit === sb.checkpointCommit && got.header.flags & FRAME_CHECKPOINT) {
        start = { sb, ...got };
        break;
      }
      problems.push(`superblock generation ${sb.generation} names a checkpoint at ${sb.checkpointOffset} that is not valid`);
    }
    if (!start) throw new ForestError('CORRUPT', `${this.path}: ${problems.join('; ')}`);
    this.sb = start.sb;
    this.uuid = start.sb.uuid;
    this.segmentSize = start.sb.segmentSize;
    this.makeTrie(start.sb.chunkSize);
    this.loadCheckpoint(start.frame, start.header, sbs[0]!.checkpointOffset);
    // Walk the frames that follow, each naming its predecessor, until one is missing or torn.
    let cur = start.header;
    let curOffset = start.sb.checkpointOffset;
    for (;;) {
      const next = cur.nextOffset;
      if (next + this.bs > this.device.geometry.capacity) break;
      const got = await this.readFrame(next, this.uuid);
      if (!got || got.header.commit !== cur.commit + 1 || got.header.prevOffset !== curOffset) break;
      if (got.header.flags & FRAME_CHECKPOINT) this.loadCheckpoint(got.frame, got.header, next);
      else this.replay(got.frame, got.header, next);
      cur = got.header;
      curOffset = next;
    }
    if (cur.commit < sbs[0]!.checkpointCommit) {
      throw new ForestError('CORRUPT', `${this.path}: the log ends at commit ${cur.commit}, before the checkpoint the newest superblock names (commit ${sbs[0]!.checkpointCommit})`);
    }
    this.lastCommit = cur.commit;
    this.lastFrameOffset = curOffset;
    this.head = cur.nextOffset;
    this.lastSeq = Math.max(this.lastSeq, cur.lastSeq);
  }

  /** A whole frame at `offset` if its header and body check out, else null. */
  private async readFrame(offset: number, uuid: Uint8Array): Promise<{ header: FrameHeader; frame: Uint8Array } | null> {
    if (offset % this.bs !== 0 || offset + this.bs > this.device.geometry.capacity) return null;
    const first = await this.reader.read(offset, this.bs);
    const header = decodeFrameHeader(first, uuid, this.bs);
    if (!header || offset + header.length > this.device.geometry.capacity) return null;
    const frame = header.length === this.bs ? first : await this.reader.read(offset, header.length);
    return verifyFrameBody(frame, header) ? { header, frame } : null;
  }

  private loadCheckpoint(frame: Uint8Array, h: FrameHeader, offset: number): void {
    const meta = decodeMeta(frame.subarray(h.metaOffset, h.metaOffset + h.metaLength), `offset ${offset}`);
    for (const s of this.storesById.values()) s.wal.clear();
    for (const m of meta.stores) {
      const existing = this.storesById.get(m.id);
      if (existing) {
        existing.root = m.root;
        existing.keys = m.keys;
      } else {
        this.addStoreState(m.id, m.name, m.root, m.keys);
      }
    }
    this.nextStoreId = meta.nextStoreId;
    this.lastSeq = meta.lastSeq;
    this.live = meta.live;
    this.stale = meta.stale;
    this.checkpointOffset = offset;
  }

  /** Replays the records of a non-checkpoint frame into the WAL index. */
  private replay(frame: Uint8Array, h: FrameHeader, offset: number): void {
    const deltas: Delta[] = [];
    let at = FRAME_HEADER_SIZE;
    let recordBytes = 0;
    for (let i = 0; i < h.recordCount; i++) {
      at = align8(at);
      const rec = decodeRecord(frame, at, `${this.path} offset ${offset + at}`);
      this.applyRecord(rec, offset + at, deltas);
      recordBytes += rec.size;
      at += rec.size;
    }
    deltas.push([offset, h.length - recordBytes, ADD_STALE]);
    applyDeltas(this.live, this.stale, deltas, this.sb.logStart, this.segmentSize);
  }

  private applyRecord(rec: DecodedRecord, offset: number, deltas: Delta[]): void {
    if (rec.kind === KIND_CREATE_STORE) {
      const name = Buffer.from(rec.key).toString('utf8');
      if (!this.storesById.has(rec.storeId)) this.addStoreState(rec.storeId, name, null, 0);
      this.nextStoreId = Math.max(this.nextStoreId, rec.storeId + 1);
      deltas.push([offset, rec.size, ADD_STALE]);
      return;
    }
    const store = this.storesById.get(rec.storeId);
    if (!store) throw new ForestError('CORRUPT', `${this.path}: a record at ${offset} names store ${rec.storeId}, which does not exist`);
    const key = rec.key.slice();
    const old = store.wal.set({
      str: Buffer.from(key).toString('latin1'), key, keyIsString: (rec.flags & FLAG_STRING_KEY) !== 0, seq: rec.seq,
      addr: packAddress(offset, rec.size), deleted: rec.kind === KIND_DELETE, valueType: rec.valueType,
      value: rec.value.length <= SMALL_VALUE ? rec.value.slice() : null, size: rec.size,
    });
    deltas.push([offset, rec.size, ADD_LIVE]);
    if (old) deltas.push([addressOffset(old.addr), old.size, MAKE_STALE]);
    this.lastSeq = Math.max(this.lastSeq, rec.seq);
  }

  private addStoreState(id: number, name: string, root: number | null, keys: number): StoreState {
    const s: StoreState = { id, name, root, keys, wal: new WalIndex(), handle: null };
    this.storesByName.set(name, s);
    this.storesById.set(id, s);
    return s;
  }

  // ---------------------------------------------------------------- stores

  /** The store named `name`, created (durably, with the next commit) when missing. */
  store(name = 'default'): Store {
    this.checkOpen();
    if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > 255) {
      throw new ForestError('INVALID_ARGUMENT', `a store name must be a string of 1 to 255 bytes, got ${JSON.stringify(name)}`);
    }
    let s = this.storesByName.get(name);
    if (!s) {
      this.checkWritable();
      s = this.addStoreState(this.nextStoreId++, name, null, 0);
      this.enqueue({ kind: KIND_CREATE_STORE, store: s, key: keyBytes(name, 255), valueType: 0, value: new Uint8Array(0), resolve: () => {}, reject: () => {} });
    }
    return (s.handle ??= new Store(this, s));
  }

  stores(): string[] {
    this.checkOpen();
    return [...this.storesByName.keys()].sort();
  }

  // ---------------------------------------------------------------- writes

  /** Queues a put or delete; resolves when its commit is durable. */
  write(store: StoreState, kind: number, key: Key, value?: Value): Promise<void> {
    try {
      this.checkOpen();
      this.checkWritable();
      const k = keyBytes(key);
      let valueType = 0;
      let bytes: Uint8Array = new Uint8Array(0);
      if (kind === KIND_PUT) {
        if (value === undefined) throw new ForestError('VALUE_NOT_ENCODABLE', 'a value must not be undefined (use del() to remove a key)');
        const enc = encodeValue(value);
        if (enc.bytes.length > this.maxValueSize) {
          throw new ForestError('VALUE_TOO_LARGE', `a value of ${enc.bytes.length} bytes is larger than the maximum of ${this.maxValueSize}`);
        }
        // The caller may reuse its own buffer before the commit runs; encoded bytes are ours.
        bytes = enc.bytes === value ? enc.bytes.slice() : enc.bytes;
        valueType = enc.type;
      }
      return new Promise<void>((resolve, reject) => {
        this.enqueue({ kind, store, key: k, valueType, value: bytes, resolve, reject });
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  private enqueue(w: PendingWrite): void {
    this.queue.push(w);
    if (!this.scheduled && !this.committing) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        void this.runCommits();
      });
    }
  }

  /** Resolves when every write issued so far has committed (or failed). */
  get flushed(): Promise<void> {
    return this.whenIdle();
  }

  private async whenIdle(): Promise<void> {
    while (this.committing || this.queue.length > 0 || this.scheduled) {
      if (this.committing) await this.committing;
      else await new Promise<void>((r) => setImmediate(r));
    }
  }

  private runCommits(): Promise<void> {
    if (this.committing) return this.committing;
    this.committing = (async () => {
      try {
        while (this.queue.length > 0) {
          const group = this.queue;
          this.queue = [];
          await this.commitGroup(group, false);
        }
      } finally {
        this.committing = null;
      }
    })();
    return this.committing;
  }

  /**
   * Builds one frame from `group` (refusing writes that would not fit with DEVICE_FULL),
   * writes it with one batch and, for sync durability, one flush; then makes it visible.
   * Nothing in memory changes until the frame is on the device.
   */
  private async commitGroup(group: PendingWrite[], forceCheckpoint: boolean): Promise<void> {
    if (this.failed) {
      for (const w of group) w.reject(this.failed);
      return;
    }
    const capacity = this.device.geometry.capacity;
    const reserve = Math.max(64 * this.bs, Math.floor(capacity / 64));
    const builder = new FrameBuilder(this.head, this.bs);
    const accepted: Accepted[] = [];
    const deltas: Delta[] = [];
    /** Versions this group writes, so a key written twice in one commit supersedes itself. */
    const newest = new Map<StoreState, Map<string, WalEntry>>();
    let seq = this.lastSeq;
    let recordBytes = 0;
    for (const w of group) {
      const size = recordSize(w.key.bytes.length, w.value.length);
      // Deletes and store creations may use half the reserve; puts may not touch it.
      const limit = capacity - (w.kind === KIND_PUT ? reserve : reserve / 2);
      if (this.head + builder.sizeWith(size) > limit) {
        w.reject(this.deviceFull());
        continue;
      }
      const s = ++seq;
      const { addr } = builder.addRecord({
        kind: w.kind, valueType: w.valueType, flags: w.key.isString ? FLAG_STRING_KEY : 0,
        storeId: w.store.id, seq: s, key: w.key.bytes, value: w.value,
      });
      recordBytes += size;
      if (w.kind === KIND_CREATE_STORE) {
        deltas.push([addressOffset(addr), size, ADD_STALE]);
        accepted.push({ w, entry: null });
        continue;
      }
      const entry: WalEntry = {
        str: w.key.str, key: w.key.bytes, keyIsString: w.key.isString, seq: s, addr, deleted: w.kind === KIND_DELETE,
        valueType: w.valueType, value: w.value.length <= SMALL_VALUE ? w.value : null, size,
      };
      let mine = newest.get(w.store);
      if (!mine) newest.set(w.store, (mine = new Map()));
      const old = mine.get(entry.str) ?? w.store.wal.get(entry.str);
      deltas.push([addressOffset(addr), size, ADD_LIVE]);
      if (old) deltas.push([addressOffset(old.addr), old.size, MAKE_STALE]);
      mine.set(entry.str, entry);
      accepted.push({ w, entry });
    }
    if (accepted.length === 0 && !forceCheckpoint) return;
    const checkpoint = (forceCheckpoint || this.walSize() + accepted.length >= this.walThreshold) && this.checkpointFits(builder, newest);

    this.building = builder;
    this.reader.pending = builder;
    let frame: Uint8Array;
    let flush: FlushResult | null = null;
    try {
      if (checkpoint) flush = this.flushIndex(builder, newest, seq, deltas, recordBytes);
      if (this.head + builder.sizeWith(0) > capacity) throw this.deviceFull();
      frame = builder.seal({
        flags: flush ? FRAME_CHECKPOINT : 0, commit: this.lastCommit + 1, prevOffset: this.lastFrameOffset,
        nextOffset: this.head + builder.sizeWith(0), lastSeq: seq,
        checkpointOffset: flush ? this.head : this.checkpointOffset, uuid: this.uuid, timestamp: Date.now(),
      });
      if (!flush) deltas.push([this.head, frame.length - recordBytes, ADD_STALE]);
    } catch (e) {
      this.building = null;
      this.reader.pending = null;
      this.trie.clearCache();
      const err = toForestError(e, this.path);
      for (const a of accepted) a.w.reject(err);
      return;
    }
    this.building = null;
    const writes: DirtyBlock[] = [{ offset: this.head, data: frame }];
    // A superblock names only a checkpoint that is already durable: it travels with the
    // commit after its checkpoint (or is written at close), never with the checkpoint itself.
    const sbWritten = this.unwrittenSuperblock;
    if (sbWritten) writes.push(this.superblockWrite(sbWritten));
    try {
      await writeBlocks(this.device, this.pool, writes, { flush: this.durability === 'sync' });
    } catch (e) {
      // The frame may or may not be on the device: refuse further writes until reopened,
      // so that recovery decides, and an unacknowledged write never becomes visible here.
      this.reader.pending = null;
      this.trie.clearCache();
      this.failed = new ForestError('IO', `${this.path}: a commit failed (${(e as Error).message}); reads still work, writes are refused until the database is reopened`, { cause: e });
      for (const a of accepted) a.w.reject(this.failed);
      return;
    }
    this.reader.pending = null;
    this.bytesWritten += frame.length;
    applyDeltas(this.live, this.stale, deltas, this.sb.logStart, this.segmentSize);
    this.lastSeq = seq;
    if (sbWritten) {
      this.sb = sbWritten;
      this.unwrittenSuperblock = null;
    }
    if (flush) {
      for (const s of this.storesById.values()) s.wal.clear();
      for (const [store, res] of flush.results) {
        store.root = res.root;
        store.keys = res.keys;
      }
      const base = this.unwrittenSuperblock ?? this.sb;
      this.unwrittenSuperblock = { ...base, generation: base.generation + 1, checkpointOffset: this.head, checkpointCommit: this.lastCommit + 1 };
      this.checkpoints++;
    } else {
      for (const a of accepted) if (a.entry) a.w.store.wal.set(a.entry);
    }
    this.adoptFrame(frame, flush !== null);
    for (const a of accepted) a.w.resolve();
  }

  private superblockWrite(sb: Superblock): DirtyBlock {
    return { offset: (sb.generation % 2) * this.bs, data: encodeSuperblock(sb, this.bs) };
  }

  /** Writes the superblock of the newest checkpoint if no commit has carried it yet. */
  private async writeSuperblock(): Promise<void> {
    const sb = this.unwrittenSuperblock;
    if (!sb || this.failed) return;
    await writeBlocks(this.device, this.pool, [this.superblockWrite(sb)], { flush: true });
    this.sb = sb;
    this.unwrittenSuperblock = null;
  }

  private deviceFull(): ForestError {
    const capacity = this.device.geometry.capacity;
    return new ForestError('DEVICE_FULL', `${this.path}: the device is full (${this.head} of ${capacity} bytes used); delete keys or use a larger device`);
  }

  private walSize(): number {
    let n = 0;
    for (const s of this.storesById.values()) n += s.wal.size;
    return n;
  }

  /** A generous estimate of the index nodes a flush writes: checkpoint only if they fit. */
  private checkpointFits(builder: FrameBuilder, newest: Map<StoreState, Map<string, WalEntry>>): boolean {
    let bytes = 16 * this.bs + this.live.length * 16;
    const count = (e: WalEntry): void => {
      bytes += 2 * (e.key.length + 64);
    };
    for (const s of this.storesById.values()) for (const e of s.wal.entries()) count(e);
    for (const m of newest.values()) for (const e of m.values()) count(e);
    return this.head + builder.sizeWith(0) + bytes <= this.device.geometry.capacity;
  }

  /** After a frame is durable: advance the head and keep its blocks in the cache. */
  private adoptFrame(frame: Uint8Array, checkpoint: boolean): void {
    const offset = this.head;
    this.commits++;
    this.lastCommit++;
    this.lastFrameOffset = offset;
    if (checkpoint) this.checkpointOffset = offset;
    this.head = offset + frame.length;
    if (frame.length <= this.cache.maxBytes / 8) {
      for (let i = 0; i < frame.length; i += this.bs) this.cache.set((offset + i) / this.bs, frame.slice(i, i + this.bs));
    }
  }

  /** The frame of a fresh store: a checkpoint with an empty index. */
  private buildCheckpointOnly(): Uint8Array {
    const builder = new FrameBuilder(this.head, this.bs, this.bs);
    builder.addMeta(encodeMeta(this.metaSnapshot(new Map(), 0, this.live, this.stale)));
    return builder.seal({
      flags: FRAME_CHECKPOINT, commit: 1, prevOffset: 0, nextOffset: this.head + builder.sizeWith(0), lastSeq: 0,
      checkpointOffset: this.head, uuid: this.uuid, timestamp: Date.now(),
    });
  }

  /**
   * Applies the WAL index plus this commit's entries to every store's trie, writing the new
   * nodes into the frame, and appends the checkpoint meta, whose space accounting already
   * includes this frame.
   */
  private flushIndex(builder: FrameBuilder, newest: Map<StoreState, Map<string, WalEntry>>, lastSeq: number, deltas: Delta[], recordBytes: number): FlushResult {
    const byStore = new Map<StoreState, Map<string, WalEntry>>();
    for (const s of this.storesById.values()) {
      if (s.wal.size > 0) byStore.set(s, new Map([...s.wal.entries()].map((e) => [e.str, e])));
    }
    for (const [store, m] of newest) {
      let all = byStore.get(store);
      if (!all) byStore.set(store, (all = new Map()));
      for (const [k, e] of m) all.set(k, e);
    }
    const results = new Map<StoreState, { root: number | null; keys: number }>();
    let nodeBytes = 0;
    for (const [store, entries] of byStore) {
      const sorted = [...entries.values()].sort((a, b) => (a.str < b.str ? -1 : a.str > b.str ? 1 : 0));
      const ops: BatchOp[] = sorted.map((e) => (e.deleted ? { key: e.key, remove: true } : { key: e.key, value: e.addr }));
      const res = this.trie.apply(store.root, ops);
      results.set(store, { root: res.root, keys: store.keys + res.inserted - res.removed });
      for (const blk of res.blocks) deltas.push([blk, this.bs, ADD_LIVE]);
      nodeBytes += res.blocks.length * this.bs;
      for (const n of res.stale) deltas.push([n.addr, n.size, MAKE_STALE]);
      for (const old of (res as { replaced?: number[] }).replaced ?? []) deltas.push([addressOffset(old), this.recordSizeOf(old), MAKE_STALE]);
      // Tombstones are not referenced by the index once applied.
      for (const e of sorted) if (e.deleted) deltas.push([addressOffset(e.addr), e.size, MAKE_STALE]);
    }
    const live = this.live.slice();
    const stale = this.stale.slice();
    const metaLength = encodeMeta(this.metaSnapshot(results, lastSeq, live, stale)).length;
    const frameLength = builder.sizeWith(metaLength + 8);
    deltas.push([this.head, frameLength - recordBytes - nodeBytes, ADD_STALE]);
    applyDeltas(live, stale, deltas, this.sb.logStart, this.segmentSize);
    builder.addMeta(encodeMeta(this.metaSnapshot(results, lastSeq, live, stale)));
    return { results };
  }

  private metaSnapshot(results: Map<StoreState, { root: number | null; keys: number }>, lastSeq: number, live: Float64Array, stale: Float64Array): CheckpointMeta {
    return {
      nextStoreId: this.nextStoreId,
      lastSeq,
      stores: [...this.storesById.values()].map((s) => {
        const r = results.get(s);
        return { id: s.id, name: s.name, root: r ? r.root : s.root, keys: r ? r.keys : s.keys };
      }),
      live,
      stale,
    };
  }

  private recordSizeOf(packed: number): number {
    const known = addressSize(packed);
    if (known > 0) return known;
    return peekRecordSize(this.reader.readSync(addressOffset(packed), RECORD_HEADER), 0);
  }

  // ---------------------------------------------------------------- reads

  readRecordSync(packed: number): DecodedRecord {
    const offset = addressOffset(packed);
    let size = addressSize(packed);
    if (size === 0) size = peekRecordSize(this.reader.readSync(offset, RECORD_HEADER), 0);
    if (size <= 0) throw new ForestError('CORRUPT', `${this.path}: the record at ${offset} has a damaged header`);
    return decodeRecord(this.reader.readSync(offset, Math.min(size, this.device.geometry.capacity - offset)), 0, `${this.path} offset ${offset}`);
  }

  async readRecord(packed: number): Promise<DecodedRecord> {
    const offset = addressOffset(packed);
    let size = addressSize(packed);
    if (size === 0) size = peekRecordSize(await this.reader.read(offset, RECORD_HEADER), 0);
    if (size <= 0) throw new ForestError('CORRUPT', `${this.path}: the record at ${offset} has a damaged header`);
    return decodeRecord(await this.reader.read(offset, Math.min(size, this.device.geometry.capacity - offset)), 0, `${this.path} offset ${offset}`);
  }

  /** The newest version of a key: a WAL entry, an index candidate, or nothing. */
  lookup(store: StoreState, k: KeyBytes): WalEntry | number | undefined {
    this.checkOpen();
    const e = store.wal.get(k.str);
    if (e) return e;
    if (store.root === null) return undefined;
    return this.guard(() => this.trie.find(store.root, k.bytes));
  }

  get trieIndex(): HBTrie {
    return this.trie;
  }

  decode(valueType: number, bytes: Uint8Array): Value {
    return decodeValue(valueType, bytes);
  }

  /** Runs index code, turning its corruption errors into ForestError CORRUPT. */
  guard<T>(f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw toForestError(e, this.path);
    }
  }

  // ---------------------------------------------------------------- admin

  stats(): DatabaseStats {
    this.checkOpen();
    let records = 0;
    let wal = 0;
    for (const s of this.storesById.values()) {
      records += s.keys;
      for (const e of s.wal.entries()) if (!e.deleted) records++;
      wal += s.wal.size;
    }
    let liveBytes = 0;
    let staleBytes = 0;
    for (let i = 0; i < this.live.length; i++) {
      liveBytes += this.live[i]!;
      staleBytes += this.stale[i]!;
    }
    const capacity = this.device.geometry.capacity;
    return {
      backend: this.device.backend, path: this.path, stores: this.storesById.size, records, walEntries: wal,
      commits: this.commits, checkpoints: this.checkpoints, lastSeq: this.lastSeq, liveBytes, staleBytes,
      deviceBytes: capacity, usedBytes: this.head, freeBytes: capacity - this.head, bytesWritten: this.bytesWritten,
      cache: { bytes: this.cache.maxBytes, hits: this.cache.hits, misses: this.cache.misses, hitRate: this.cache.hitRate },
    };
  }

  /** Flushes the WAL index into the tries now (a checkpoint commit). */
  async checkpoint(): Promise<void> {
    this.checkOpen();
    this.checkWritable();
    await this.flushWal();
  }

  private async flushWal(): Promise<void> {
    await this.whenIdle();
    if (this.failed) throw this.failed;
    let wal = 0;
    for (const s of this.storesById.values()) wal += s.wal.size;
    if (wal === 0) return;
    this.committing = this.commitGroup([], true).finally(() => {
      this.committing = null;
    });
    await this.committing;
  }

  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    try {
      await this.whenIdle();
      if (!this.readOnly && !this.failed) {
        try {
          await this.flushWal();
          await this.writeSuperblock();
        } catch {
          // The WAL is replayed at the next open.
        }
      }
    } finally {
      this.closed = true;
      this.pool.drain();
      await this.device.close();
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private checkOpen(): void {
    if (this.closed) {
      throw new ForestError('CLOSED', `${this.path}: the database is closed`);
    }
  }

  private checkWritable(): void {
    if (this.readOnly) throw new ForestError('READ_ONLY', `${this.path}: the database is open read-only`);
    if (this.closing) throw new ForestError('CLOSED', `${this.path}: the database is closing`);
    if (this.failed) throw this.failed;
  }
}

interface FlushResult {
  results: Map<StoreState, { root: number | null; keys: number }>;
}

interface Accepted {
  w: PendingWrite;
  entry: WalEntry | null;
}

/** Space accounting changes: bytes at an offset become live, move live→stale, or are stale from the start. */
const ADD_LIVE = 0;
const MAKE_STALE = 1;
const ADD_STALE = 2;
type Delta = [offset: number, bytes: number, kind: 0 | 1 | 2];

function applyDeltas(live: Float64Array, stale: Float64Array, deltas: readonly Delta[], logStart: number, segmentSize: number): void {
  for (const [offset, bytes, kind] of deltas) {
    const seg = Math.min(live.length - 1, Math.max(0, Math.floor((offset - logStart) / segmentSize)));
    if (kind === ADD_LIVE) {
      live[seg]! += bytes;
    } else if (kind === MAKE_STALE) {
      live[seg] = Math.max(0, live[seg]! - bytes);
      stale[seg]! += bytes;
    } else {
      stale[seg]! += bytes;
    }
  }
}

export function toForestError(e: unknown, path: string): Error {
  if (e instanceof ForestError) return e;
  const code = (e as { code?: string }).code;
  if (code === 'CORRUPT') return new ForestError('CORRUPT', `${path}: ${(e as Error).message}`, { cause: e });
  return e as Error;
}
