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
  BufferPool, openDevice, parseSize, RangeLocks, writeBlocks,
  type BackendChoice, type BlockDevice, type DirtyBlock,
} from '../io/index.js';
import { BlockCache } from './block-cache.js';
import { crc32c } from './checksum.js';
import {
  decodeValue, encodeValue, keyBytes, latin1, MAX_KEY_LENGTH, VT_BUFFER, VT_UINT8ARRAY, type Key, type KeyBytes, type Value,
} from './codec.js';
import {
  decodeFrameHeader, decodeSuperblock, encodeSuperblock, FORMAT_VERSION, FRAME_CHECKPOINT, FRAME_COPY, FRAME_HEADER_SIZE,
  notForestFs, sealedRecordsEnd, SUPERBLOCKS, verifyFrameBody, type FrameHeader, type Superblock,
} from './format.js';
import { FrameBuilder, align8, recycleFrame, roundUp } from './frame-builder.js';
import { LogReader } from './log-reader.js';
import { decodeMeta, encodeMeta, type CheckpointMeta } from './meta.js';
import type { StoreView } from './reader.js';
import {
  addressOffset, addressSize, decodeRecord, FLAG_STRING_KEY, isTombstone, KIND_CREATE_STORE, KIND_DELETE, KIND_PUT,
  MAX_DEVICE_BYTES, packAddress, peekRecordSize, RECORD_HEADER, recordSize, type DecodedRecord,
} from './record.js';
import { Snapshot } from './snapshot.js';
import { copyBytes, copyLarge, MAX_SHARED, releaseLarge } from './slab.js';
import { ADD_LIVE, ADD_STALE, MAKE_STALE, SpaceDeltas } from './space-deltas.js';
import { Store, type WriteOptions } from './store.js';
import { Transaction } from './transaction.js';
import { entryOfWrite, WalIndex, type FrozenWal, type WalEntry } from './wal-index.js';

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
  /**
   * Write zeros ahead of the log's head, so that small commits overwrite blocks the file
   * system has already allocated. Default: true for image files, false for block devices.
   */
  prepareLog?: boolean;
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

/** A store as the engine keeps it: also the live view its Store reads. */
export interface StoreState extends StoreView {
  readonly id: number;
  readonly name: string;
  root: number | null;
  /** Index entries, deletions included. */
  keys: number;
  /** Index entries that are deletions. */
  tombstones: number;
  checkpointSeq: number;
  readonly wal: WalIndex;
  handle: Store | null;
}

/** One put, delete or store creation, validated and encoded, waiting for a commit. */
export interface WriteOp {
  kind: number;
  store: StoreState;
  key: KeyBytes;
  valueType: number;
  value: Uint8Array;
  ifAbsent: boolean;
  /** -1: no version condition. */
  ifVersion: number;
  /** A pooled copy behind `value` (slab.ts copyLarge), released once the commit is written. */
  pooled?: Uint8Array;
}

/** Writes that commit together or not at all (one write, or a transaction). */
interface PendingBatch {
  ops: WriteOp[];
  /** With the sequence number of the batch's last write. */
  resolve: (seq: number) => void;
  reject: (e: Error) => void;
}

const DEFAULT_SIZE = 2 ** 30;
/** Values up to this size stay in the WAL index; must stay below slab.ts MAX_SHARED (pooled copies are reused). */
const SMALL_VALUE = 2048;
const EMPTY = new Uint8Array(0);
/** Bytes of log zeroed ahead of the head at a time on image files (prepareAhead). */
const PREPARE_BYTES = 1 << 20;
/** Written frames up to this size are kept in the block cache (adoptFrame). */
const CACHE_FRAME_MAX = 1 << 20;
/**
 * Only frames up to this size prepare ahead: a batched load's 136 KiB frames gained nothing
 * from the zeros (200k-key key-order load 546-651 ms without, 689-813 ms with) and wrote
 * twice the bytes.
 */
const PREPARE_SMALL = 64 << 10;
/**
 * Durable commits up to this size write their frame (and a superblock travelling with them)
 * with FUA and no flush. In sync mode every earlier commit is durable already, so the frame is
 * all a commit needs on stable media; the zeros written ahead (prepareAhead) need not be.
 * Measured over written blocks of an ext4 image (`bench/engine-commit.ts`, io_uring, same
 * minutes): a 4 KiB FUA write 118-177 µs p50 against 195-206 µs for a write then a flush
 * (one io_uring request instead of a write and a drained fsync; through plain system calls
 * the two cost the same).
 * Larger commits keep one flush after all their writes.
 */
const FUA_MAX = 64 << 10;
/**
 * Readers' commit locks (holdCommit) are on bytes READER_LOCK_BASE + commit of the image or
 * device: names only, far past any device's end, nothing there is read or written.
 */
const READER_LOCK_BASE = 2 ** 52;
/**
 * The byte the writer locks exclusively while it ends a compaction (from deciding whether to
 * reclaim at once to writing the superblock that names the new checkpoint); readers wait for
 * it to be free before reading the superblock at open (passGate).
 */
const COMPACT_GATE = READER_LOCK_BASE - 1;
/**
 * The flush policy (adaptWalLimit): how far the WAL may grow, and when it should. Session 5
 * raised 16× / 48 to 32× / 64: the suite's random load and overwrites wrote 2.08 → 1.85× their
 * bytes (docs/ARCHITECTURE.md, "The flush policy").
 */
const WAL_GROWTH = 32;
const WAL_SPARSE = 64;
const WAL_DENSE = 96;
/**
 * However far the WAL may grow in entries, a flush also runs once the keys and small values
 * it keeps in memory reach this many bytes (4 × 4,096 entries of 2 KiB values: the memory the
 * WAL could hold before its growth limit was raised).
 */
const WAL_MAX_BYTES = 32 << 20;

export class Database {
  /**
   * @internal How long a reader's open waits on the gate (passGate) before giving up with
   * LOCKED: a writer stuck in I/O. Changed only by tests.
   */
  static gateWaitMs = 30_000;

  readonly path: string;
  readonly readOnly: boolean;
  readonly durability: Durability;
  private readonly device: BlockDevice;
  private readonly bs: number;
  private readonly pool: BufferPool;
  private readonly cache: BlockCache;
  private readonly reader: LogReader;
  private trie!: HBTrie;
  private readonly prepareLog: boolean;
  /** The log is known to be written (allocated in the image file) from the head up to here. */
  private preparedEnd = 0;
  private zeros: Uint8Array | null = null;
  private readonly walThreshold: number;
  /** WAL entries that trigger the next flush: walThreshold, or more while flushes are costly. */
  private walLimit: number;
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
  /** Header of the newest frame (a read-only opener follows the log from it on refresh). */
  private lastHeader: FrameHeader | null = null;
  private checkpointOffset = 0;
  /** Sequence number of the newest index flush: the index holds nothing newer. */
  private checkpointSeq = 0;
  private head = 0;
  /** Start of the oldest byte the log still needs; the log is circular between tail and head. */
  private tail = 0;
  /** Where the tail moves once no open snapshot predates the compaction that freed the space. */
  private pendingTail: { offset: number; commit: number } | null = null;
  private commits = 0;
  private checkpoints = 0;
  private bytesWritten = 0;
  /** The superblock naming the newest checkpoint, until a write has carried it. */
  private unwrittenSuperblock: Superblock | null = null;
  /** The frame being built: the NodeStore allocates index blocks in it. */
  private building: FrameBuilder | null = null;

  private queue: PendingBatch[] = [];
  private readonly snapshots = new Set<Snapshot>();
  /** Live iterators by the commit they were opened at: commit → how many are open (0s pruned lazily). */
  private readonly pins = new Map<number, number>();
  /**
   * Readers in other processes, by the commit each reads (shared byte-range locks on the image
   * or block device, see holdCommit): a writer does not reuse space they may read. null where
   * the device has no path that takes OFD locks.
   */
  private readerLocks: RangeLocks | null = null;
  /** The writer holds the readers' gate (closeGate): a compaction is deciding or writing its end. */
  private gateClosed = false;
  /** A read-only opener: the commit its lock names (-1: none). */
  private heldCommit = -1;
  private committing: Promise<void> | null = null;
  private scheduled = false;
  /** An orderWhenIdle check is queued. */
  private orderScheduled = false;
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
    this.walLimit = this.walThreshold;
    if (!Number.isInteger(this.walThreshold) || this.walThreshold < 1) {
      throw new ForestError('INVALID_ARGUMENT', `walThreshold must be a positive integer, got ${opts.walThreshold}`);
    }
    const maxValue = opts.maxValueSize ?? 64 * 2 ** 20;
    if (!Number.isSafeInteger(maxValue) || maxValue < 1) {
      throw new ForestError('INVALID_ARGUMENT', `maxValueSize must be a positive integer (bytes), got ${String(opts.maxValueSize)}`);
    }
    this.maxValueSize = Math.min(maxValue, Math.floor(device.geometry.capacity / 8));
    this.prepareLog = opts.prepareLog ?? (!device.geometry.blockDevice && device.backend !== 'memory');
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
    this.readerLocks = RangeLocks.open(this.path, !this.readOnly);
    try {
      // A reader names commit 0 until it knows its own, so that nothing is reclaimed meanwhile.
      if (this.readOnly) {
        this.holdCommit(0);
        await this.passGate();
      }
      await this.recoverOrFormat(opts);
      if (this.readOnly) this.holdCommit(this.lastCommit);
    } catch (e) {
      this.readerLocks?.close();
      throw e;
    }
  }

  /**
   * For a read-only opener: names `commit` as the oldest one this process reads (a shared
   * lock on byte READER_LOCK_BASE + commit), then drops the name it had. The writer reclaims
   * a compaction's space only when no reader names a commit older than the compaction's
   * (canReclaimAt), as for its own snapshots. The lock goes with the process.
   */
  private holdCommit(commit: number): void {
    const locks = this.readerLocks;
    if (!locks || commit === this.heldCommit) return;
    if (!locks.share(READER_LOCK_BASE + commit, 1)) return;
    if (this.heldCommit >= 0) locks.unlock(READER_LOCK_BASE + this.heldCommit, 1);
    this.heldCommit = commit;
  }

  /**
   * For a read-only opener, after naming commit 0: waits while the writer ends a compaction.
   * The writer closes the gate before it checks for readers and decides to reclaim at once
   * (writing the new tail into the compaction's checkpoint), and opens it once the superblock
   * names that checkpoint. So a reader either named commit 0 before the check (the writer sees
   * it and does not reclaim), or reads the superblock after it (and never reads the freed
   * space): none can come to read the old state unseen, which a restarted writer would take
   * as free.
   */
  private async passGate(): Promise<void> {
    const locks = this.readerLocks;
    if (!locks || this.heldCommit < 0) return;
    const t0 = performance.now();
    const wait = Database.gateWaitMs;
    while (locks.taken(COMPACT_GATE, 1)) {
      if (performance.now() - t0 > wait) {
        throw new ForestError('LOCKED', `${this.path}: the writer has been ending a compaction for ${wait / 1000} s; try again`);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** The oldest commit this process may still read: its current one, or an open snapshot's or iterator's. */
  private oldestRead(): number {
    let oldest = this.lastCommit;
    for (const s of this.snapshots) oldest = Math.min(oldest, s.commit);
    for (const [c, open] of this.pins) if (open > 0) oldest = Math.min(oldest, c);
    return oldest;
  }

  private async recoverOrFormat(opts: OpenOptions): Promise<void> {
    const { valid, blank } = await this.superblocks();
    if (blank) {
      if (this.readOnly) throw notForestFs(this.path, 'it is blank (open it writable once to format it)');
      await this.format(opts.chunkSize ?? 8);
    } else if (valid.length === 0) {
      throw notForestFs(this.path, 'no valid superblock in its first two blocks');
    }
    if (valid.length > 0) await this.recover(valid);
  }

  /** The valid superblocks, newest first, read past the cache (a writer in another process rewrites them). */
  private async superblocks(): Promise<{ valid: Superblock[]; blank: boolean }> {
    const both = await this.readDirect(0, SUPERBLOCKS * this.bs);
    const a = decodeSuperblock(both.subarray(0, this.bs));
    const b = decodeSuperblock(both.subarray(this.bs, 2 * this.bs));
    const valid = [a, b].filter((x): x is Superblock => x !== null && x !== 'blank').sort((x, y) => y.generation - x.generation);
    return { valid, blank: a === 'blank' && b === 'blank' };
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
    this.addStoreState(1, 'default', null, 0, 0);
    this.nextStoreId = 2;
    this.head = this.sb.logStart;
    this.tail = this.sb.logStart;
    this.lastCommit = 0;
    // The first checkpoint, then the superblocks that point at it: a crash in between
    // leaves blank superblocks, and the next open formats again.
    const frame = this.buildCheckpointOnly();
    await writeBlocks(this.device, this.pool, [{ offset: this.head, data: frame }], { flush: true });
    this.adoptFrame(frame, true, this.head);
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
      // The engine's CRC32C (native where the library is built): the trie's default is its own
      // JavaScript one, so that it needs nothing native; both write the same bytes.
      checksum: crc32c,
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
    this.lastCommit = start.header.commit;
    this.lastFrameOffset = start.sb.checkpointOffset;
    this.lastHeader = start.header;
    this.head = start.header.nextOffset;
    this.lastSeq = Math.max(this.lastSeq, start.header.lastSeq);
    await this.follow();
    if (this.lastCommit < sbs[0]!.checkpointCommit) {
      throw new ForestError('CORRUPT', `${this.path}: the log ends at commit ${this.lastCommit}, before the checkpoint the newest superblock names (commit ${sbs[0]!.checkpointCommit})`);
    }
  }

  /**
   * Walks the frames after the newest known one, each naming its predecessor, until one is
   * missing or torn, loading checkpoints and replaying records. Returns the frames found.
   */
  private async follow(): Promise<number> {
    let found = 0;
    let cur = this.lastHeader!;
    let curOffset = this.lastFrameOffset;
    for (;;) {
      // The next frame is where the last one ended, or at the log's start if the log wrapped.
      let next = cur.nextOffset;
      const follows = (f: { header: FrameHeader } | null): boolean => f !== null && f.header.commit === cur.commit + 1 && f.header.prevOffset === curOffset;
      let got = await this.readFrame(next, this.uuid);
      if (!follows(got) && next !== this.sb.logStart) {
        next = this.sb.logStart;
        got = await this.readFrame(next, this.uuid);
      }
      if (!got || !follows(got)) break;
      // What this process cached of an earlier lap of the log there is stale now: its blocks,
      // and once the log wraps round, the trie's nodes (their addresses are reused).
      this.cache.drop(next / this.bs, got.header.length / this.bs);
      if (next < curOffset) this.trie.clearCache();
      if (got.header.flags & FRAME_CHECKPOINT) this.loadCheckpoint(got.frame, got.header, next);
      else if (got.header.flags & FRAME_COPY) this.replayCopy(got.header, next);
      else this.replay(got.frame, got.header, next);
      cur = got.header;
      curOffset = next;
      found++;
      this.commits++;
    }
    this.lastCommit = cur.commit;
    this.lastFrameOffset = curOffset;
    this.lastHeader = cur;
    this.head = curOffset + cur.length;
    this.lastSeq = Math.max(this.lastSeq, cur.lastSeq);
    return found;
  }

  /**
   * A whole frame at `offset` if its header and body check out, else null. Read past the
   * cache: the log's tail may change under a read-only opener, and a torn tail read during
   * recovery must not be served from the cache later.
   */
  private async readFrame(offset: number, uuid: Uint8Array): Promise<{ header: FrameHeader; frame: Uint8Array } | null> {
    if (offset % this.bs !== 0 || offset + this.bs > this.device.geometry.capacity) return null;
    const first = await this.readDirect(offset, this.bs);
    const header = decodeFrameHeader(first, uuid, this.bs);
    if (!header || offset + header.length > this.device.geometry.capacity) return null;
    const frame = header.length === this.bs ? first : await this.readDirect(offset, header.length);
    return verifyFrameBody(frame, header) ? { header, frame } : null;
  }

  private async readDirect(offset: number, length: number): Promise<Uint8Array> {
    const buf = this.pool.acquire(length);
    try {
      // One batch, split at the device's largest transfer (a checkpoint frame can be MBs).
      const max = Math.max(this.bs, Math.floor(this.device.geometry.maxTransfer / this.bs) * this.bs);
      const cmds = [];
      for (let at = 0; at < length; at += max) cmds.push({ op: 'read' as const, offset: offset + at, buffer: buf.subarray(at, Math.min(length, at + max)) });
      await this.device.submit(cmds);
      return buf.bytes.slice(0, length);
    } finally {
      this.pool.release(buf);
    }
  }

  /** The same, synchronously and through the cache (frames behind the head never change). */
  private readFrameSync(offset: number): { header: FrameHeader; frame: Uint8Array } | null {
    if (offset % this.bs !== 0 || !this.inLog(offset, this.bs)) return null;
    const header = decodeFrameHeader(this.reader.readSync(offset, this.bs), this.uuid, this.bs);
    if (!header || !this.inLog(offset, header.length)) return null;
    const frame = this.reader.readSync(offset, header.length);
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
        existing.tombstones = m.tombstones;
      } else {
        this.addStoreState(m.id, m.name, m.root, m.keys, m.tombstones);
      }
    }
    this.nextStoreId = meta.nextStoreId;
    this.lastSeq = meta.lastSeq;
    this.live = meta.live;
    this.stale = meta.stale;
    this.tail = meta.tail;
    this.checkpointOffset = offset;
    this.setCheckpointSeq(meta.lastSeq);
  }

  private setCheckpointSeq(seq: number): void {
    this.checkpointSeq = seq;
    for (const s of this.storesById.values()) s.checkpointSeq = seq;
  }

  /** A compaction's copy frame whose checkpoint never came: all of it is stale. */
  private replayCopy(h: FrameHeader, offset: number): void {
    const d = new SpaceDeltas();
    d.add(offset, h.length, ADD_STALE);
    d.applyTo(this.live, this.stale, this.sb.logStart, this.segmentSize);
  }

  /** Replays the records of a non-checkpoint frame into the WAL index. */
  private replay(frame: Uint8Array, h: FrameHeader, offset: number): void {
    const deltas = new SpaceDeltas();
    let recordBytes = 0;
    forEachRecord(frame, h, offset, this.path, (rec, at) => {
      recordBytes += rec.size;
      if (rec.kind === KIND_CREATE_STORE) {
        if (!this.storesById.has(rec.storeId)) this.addStoreState(rec.storeId, Buffer.from(rec.key).toString('utf8'), null, 0, 0);
        this.nextStoreId = Math.max(this.nextStoreId, rec.storeId + 1);
        deltas.add(at, rec.size, ADD_STALE);
        return;
      }
      const store = this.storesById.get(rec.storeId);
      if (!store) throw new ForestError('CORRUPT', `${this.path}: a record at ${at} names store ${rec.storeId}, which does not exist`);
      const old = store.wal.set(walEntryOf(rec, at));
      deltas.add(at, rec.size, ADD_LIVE);
      if (old >= 0) deltas.add(addressOffset(store.wal.addrAt(old)), store.wal.sizeAt(old), MAKE_STALE);
      this.lastSeq = Math.max(this.lastSeq, rec.seq);
    });
    deltas.add(offset, h.length - recordBytes, ADD_STALE);
    deltas.applyTo(this.live, this.stale, this.sb.logStart, this.segmentSize);
  }

  private addStoreState(id: number, name: string, root: number | null, keys: number, tombstones: number): StoreState {
    const s: StoreState = { id, name, root, keys, tombstones, checkpointSeq: this.checkpointSeq, wal: new WalIndex(), handle: null };
    this.storesByName.set(name, s);
    this.storesById.set(id, s);
    return s;
  }

  // ---------------------------------------------------------------- stores

  /** The store named `name`, created (durably, with the next commit) when missing. */
  store(name = 'default'): Store {
    return this.handleOf(this.storeState(name));
  }

  private handleOf(state: StoreState): Store {
    return (state.handle ??= new Store(this, state));
  }

  /** @internal The state of a store, created when missing. */
  storeState(name: string): StoreState {
    this.assertOpen();
    if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > 255) {
      throw new ForestError('INVALID_ARGUMENT', `a store name must be a string of 1 to 255 bytes, got ${JSON.stringify(name)}`);
    }
    let s = this.storesByName.get(name);
    if (!s) {
      this.checkWritable();
      s = this.addStoreState(this.nextStoreId++, name, null, 0, 0);
      const op: WriteOp = { kind: KIND_CREATE_STORE, store: s, key: keyBytes(name, 255), valueType: 0, value: new Uint8Array(0), ifAbsent: false, ifVersion: -1 };
      this.enqueue({ ops: [op], resolve: () => {}, reject: () => {} });
    }
    return s;
  }

  stores(): string[] {
    this.assertOpen();
    return [...this.storesByName.keys()].sort();
  }

  // ---------------------------------------------------------------- snapshots

  /**
   * A consistent read view over all stores: as of the last commit, or (with `seq`) as of the
   * newest commit whose writes all have sequence numbers ≤ seq, read back from the log while
   * that commit is still on the device.
   */
  snapshot(opts: { seq?: number } = {}): Snapshot {
    this.assertOpen();
    if (typeof opts !== 'object' || opts === null) throw new ForestError('INVALID_ARGUMENT', 'snapshot options must be an object');
    const seq = opts.seq;
    if (seq !== undefined && (!Number.isSafeInteger(seq) || seq < 0)) {
      throw new ForestError('INVALID_ARGUMENT', `seq must be a sequence number (an integer ≥ 0), got ${String(seq)}`);
    }
    if (seq === undefined || seq >= this.lastSeq) return this.currentSnapshot();
    const past = this.guard(() => this.pastViews(seq));
    return this.register(past.seq, past.commit, past.views, () => {});
  }

  private currentSnapshot(): Snapshot {
    const views = new Map<string, StoreView>();
    const frozen: FrozenWal[] = [];
    for (const s of this.storesByName.values()) {
      const wal = s.wal.freeze();
      frozen.push(wal);
      views.set(s.name, { id: s.id, name: s.name, root: s.root, wal, checkpointSeq: s.checkpointSeq });
    }
    return this.register(this.lastSeq, this.lastCommit, views, () => {
      for (const w of frozen) w.release();
    });
  }

  private register(seq: number, commit: number, views: Map<string, StoreView>, release: () => void): Snapshot {
    const snap: Snapshot = new Snapshot(this, seq, commit, views, () => {
      this.snapshots.delete(snap);
      release();
    });
    this.snapshots.add(snap);
    return snap;
  }

  /** Open snapshots (their versions are not reclaimed). */
  get openSnapshots(): number {
    return this.snapshots.size;
  }

  /**
   * The stores as of the newest commit with lastSeq ≤ seq: back along the checkpoints to the
   * newest one at or before it, then forward through the frames after it, replaying their
   * records into private WAL indexes.
   */
  private pastViews(seq: number): { seq: number; commit: number; views: Map<string, StoreView> } {
    const gone = (why: string): ForestError => new ForestError('NOT_FOUND', `${this.path}: the state as of sequence number ${seq} is no longer on the device (${why})`);
    let cpOffset = this.checkpointOffset;
    let cp = this.readFrameSync(cpOffset);
    if (!cp) throw gone(`the checkpoint at ${cpOffset} cannot be read`);
    while (cp.header.lastSeq > seq) {
      const before = this.readFrameSync(cp.header.prevOffset);
      if (!before || before.header.commit !== cp.header.commit - 1) throw gone(`commit ${cp.header.commit - 1} is missing`);
      cpOffset = before.header.checkpointOffset;
      cp = this.readFrameSync(cpOffset);
      if (!cp || !(cp.header.flags & FRAME_CHECKPOINT) || cp.header.commit > before.header.commit) throw gone(`the checkpoint before commit ${before.header.commit} is missing`);
    }
    const meta = decodeMeta(cp.frame.subarray(cp.header.metaOffset, cp.header.metaOffset + cp.header.metaLength), `offset ${cpOffset}`);
    const byId = new Map<number, { id: number; name: string; root: number | null; wal: WalIndex; checkpointSeq: number }>();
    for (const m of meta.stores) byId.set(m.id, { id: m.id, name: m.name, root: m.root, wal: new WalIndex(), checkpointSeq: meta.lastSeq });
    let cur = cp.header;
    let curOffset = cpOffset;
    while (cur.commit < this.lastCommit) {
      const next = this.readFrameSync(cur.nextOffset);
      if (!next || next.header.commit !== cur.commit + 1 || next.header.prevOffset !== curOffset) throw gone(`commit ${cur.commit + 1} cannot be read`);
      if (next.header.lastSeq > seq) break;
      // A compaction's copies are not new writes: only its closing checkpoint names them.
      if (!(next.header.flags & FRAME_COPY)) forEachRecord(next.frame, next.header, cur.nextOffset, this.path, (rec, at) => {
        if (rec.kind === KIND_CREATE_STORE) {
          if (!byId.has(rec.storeId)) byId.set(rec.storeId, { id: rec.storeId, name: Buffer.from(rec.key).toString('utf8'), root: null, wal: new WalIndex(), checkpointSeq: meta.lastSeq });
          return;
        }
        byId.get(rec.storeId)?.wal.set(walEntryOf(rec, at));
      });
      curOffset = cur.nextOffset;
      cur = next.header;
    }
    const views = new Map<string, StoreView>();
    for (const v of byId.values()) views.set(v.name, v);
    return { seq: cur.lastSeq, commit: cur.commit, views };
  }

  // ---------------------------------------------------------------- transactions, rollback

  /**
   * Runs `fn` with a transaction: its reads see a snapshot plus its own writes; its writes
   * commit together, in one commit, when `fn` returns (or its promise resolves), or not at
   * all when it throws. Resolves with fn's result once the commit is durable.
   */
  async transaction<T>(fn: (tx: Transaction) => T | Promise<T>): Promise<T> {
    this.assertOpen();
    this.checkWritable();
    if (typeof fn !== 'function') throw new ForestError('INVALID_ARGUMENT', 'transaction takes a function');
    const snap = this.snapshot();
    const tx = new Transaction(this, snap);
    let result: T;
    let ops: WriteOp[];
    try {
      result = await fn(tx);
    } finally {
      ops = tx.end();
      snap.close();
    }
    if (ops.length > 0) await this.submit(ops);
    return result;
  }

  /**
   * Makes the state as of `seq` (see snapshot) current again, with one new commit that
   * restores every key changed since: the earlier value comes back (with a new sequence
   * number, so the changes feed reports it) and keys written since are deleted. Stores
   * created since remain, emptied. Resolves with the commit's last sequence number.
   */
  async rollback(seq: number): Promise<number> {
    this.assertOpen();
    this.checkWritable();
    await this.whenIdle();
    const target = this.snapshot({ seq });
    const now = this.currentSnapshot();
    const ops: WriteOp[] = [];
    try {
      for (const name of now.stores()) {
        const state = this.storesByName.get(name)!;
        const then = target.store(name);
        for (const v of now.store(name).changedVersions(target.seq)) {
          const k = { bytes: v.key, str: v.str, isString: v.keyIsString };
          const old = then.version(k);
          if (old) {
            ops.push({ kind: KIND_PUT, store: state, key: k, valueType: old.valueType, value: Uint8Array.prototype.slice.call(then.valueBytes(old)), ifAbsent: false, ifVersion: -1 });
          } else if (!v.deleted) {
            ops.push({ kind: KIND_DELETE, store: state, key: k, valueType: 0, value: new Uint8Array(0), ifAbsent: false, ifVersion: -1 });
          }
        }
      }
    } finally {
      target.close();
      now.close();
    }
    if (ops.length === 0) return this.lastSeq;
    return this.submit(ops);
  }

  /**
   * For a read-only opener: reads the commits another process wrote since this one opened
   * (or last refreshed). Resolves with the number of new commits. A writer is always current.
   */
  async refresh(): Promise<number> {
    this.assertOpen();
    if (!this.readOnly) return 0;
    const before = this.lastCommit;
    await this.follow();
    // The frames that led on from here may be gone: a compaction in the writer frees them
    // at once when none of its own readers needs them. Then the newest superblock names a
    // checkpoint past the end of what could be followed; start again from it, as an open does
    // (with nothing cached from before: the log may have wrapped round over it).
    const sbs = (await this.superblocks()).valid;
    if (sbs.length > 0 && sbs[0]!.checkpointCommit > this.lastCommit) {
      this.cache.clear();
      await this.recover(sbs);
    }
    this.holdCommit(this.oldestRead());
    return this.lastCommit - before;
  }

  // ---------------------------------------------------------------- writes

  /** Queues a put or delete; resolves with its sequence number when its commit is durable. */
  write(store: StoreState, kind: number, key: Key, value?: Value, opts?: WriteOptions): Promise<number> {
    try {
      return this.submit([this.prepareWrite(store, kind, key, value, opts)]);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** @internal Validates and encodes a write; throws a ForestError for bad input. */
  prepareWrite(store: StoreState, kind: number, key: Key, value: Value | undefined, opts: WriteOptions | undefined): WriteOp {
    this.assertOpen();
    this.checkWritable();
    const k = keyBytes(key);
    let valueType = 0;
    let bytes: Uint8Array = EMPTY;
    let pooled: Uint8Array | null = null;
    if (kind === KIND_PUT) {
      if (value === undefined) throw new ForestError('VALUE_NOT_ENCODABLE', 'a value must not be undefined (use del() to remove a key)');
      // Byte arrays, the common case, without encodeValue's result object.
      const raw = value instanceof Uint8Array;
      const enc = raw ? null : encodeValue(value);
      const encoded = enc === null ? (value as Uint8Array) : enc.bytes;
      if (encoded.length > this.maxValueSize) {
        throw new ForestError('VALUE_TOO_LARGE', `a value of ${encoded.length} bytes is larger than the maximum of ${this.maxValueSize}`);
      }
      if (enc === null) {
        valueType = Buffer.isBuffer(value) ? VT_BUFFER : VT_UINT8ARRAY;
        // The caller may reuse its own buffer before the commit runs: copy it.
        if (encoded.length <= MAX_SHARED) {
          bytes = copyBytes(encoded);
        } else {
          const copy = copyLarge(encoded);
          bytes = copy.bytes;
          pooled = copy.whole;
        }
      } else {
        // Encoded bytes are ours already.
        bytes = enc.bytes;
        valueType = enc.type;
      }
    }
    let ifAbsent = false;
    let ifVersion = -1;
    if (opts !== undefined) {
      if (typeof opts !== 'object' || opts === null) throw new ForestError('INVALID_ARGUMENT', 'write options must be an object');
      if (opts.ifAbsent !== undefined && typeof opts.ifAbsent !== 'boolean') throw new ForestError('INVALID_ARGUMENT', 'ifAbsent must be a boolean');
      ifAbsent = opts.ifAbsent === true;
      if (opts.ifVersion !== undefined) {
        if (!Number.isSafeInteger(opts.ifVersion) || opts.ifVersion < 1) {
          throw new ForestError('INVALID_ARGUMENT', `ifVersion must be a sequence number from getEntry (an integer ≥ 1), got ${String(opts.ifVersion)}`);
        }
        if (ifAbsent) throw new ForestError('INVALID_ARGUMENT', 'ifAbsent and ifVersion cannot both be given');
        ifVersion = opts.ifVersion;
      }
    }
    const op: WriteOp = { kind, store, key: k, valueType, value: bytes, ifAbsent, ifVersion };
    if (pooled) op.pooled = pooled;
    return op;
  }

  /** @internal Queues writes that commit together; resolves with the last one's sequence number. */
  submit(ops: WriteOp[]): Promise<number> {
    return new Promise<number>((resolve, reject) => this.enqueue({ ops, resolve, reject }));
  }

  private enqueue(w: PendingBatch): void {
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
          // The frame is written (or the batches refused): pooled value copies go back.
          for (const b of group) for (const op of b.ops) if (op.pooled) releaseLarge(op.pooled);
        }
      } finally {
        this.committing = null;
      }
      this.orderWhenIdle();
    })();
    return this.committing;
  }

  /**
   * Once no write is waiting, merges each WAL's out-of-order writes into its key order (in a
   * later turn of the event loop, after the callers of the last commit have run: a batched
   * load queues its next batch before then, and this waits for the next idle moment). The
   * first range after a burst of random writes then starts at once instead of sorting them
   * (10–25 ms after the suite's random load, 43k entries), and the next flush finds them in
   * order. The work is the same as the reader's or the flush's would be (WalIndex.wantsOrdering).
   */
  private orderWhenIdle(): void {
    if (this.orderScheduled) return;
    this.orderScheduled = true;
    setImmediate(() => {
      this.orderScheduled = false;
      if (this.closed || this.committing || this.queue.length > 0) return;
      for (const s of this.storesById.values()) if (s.wal.wantsOrdering) s.wal.order();
    }).unref();
  }

  /**
   * Builds one frame from `group` (refusing batches that would not fit with DEVICE_FULL and
   * batches whose conditions fail with CONFLICT), writes it with one batch and, for sync
   * durability, one flush; then makes it visible. Nothing in memory changes until the frame
   * is on the device.
   */
  private async commitGroup(group: PendingBatch[], forceCheckpoint: boolean): Promise<void> {
    if (this.failed) {
      for (const b of group) b.reject(this.failed);
      return;
    }
    if (this.pendingTail && this.canReclaim()) await this.reclaim();
    const reserve = this.reserve();
    const free = this.freeBytes();
    // Accepted batches with each one's last seq (parallel arrays), and their writes in order:
    // write i gets seq first + i. A group of one batch (a transaction) writes its own array.
    const accepted: PendingBatch[] = [];
    const acceptedSeq: number[] = [];
    let ops: WriteOp[] = [];
    const first = this.lastSeq + 1;
    /** Versions earlier batches of this group write, kept only when a batch has conditions. */
    const overlay: Overlay | null = group.some(isConditional) ? new Map() : null;
    let added = 0;
    let seq = this.lastSeq;
    let bytes = FRAME_HEADER_SIZE + this.bs;
    for (const b of group) {
      // Space and conditions first: a batch is all in this frame or refused whole.
      let size = 0;
      let puts = false;
      for (const op of b.ops) {
        size += align8(recordSize(op.key.bytes.length, op.value.length));
        if (op.kind === KIND_PUT) puts = true;
      }
      // Deletes and store creations may use half the reserve; puts may not touch it.
      if (bytes + size > free - (puts ? reserve : reserve / 2)) {
        b.reject(this.deviceFull());
        continue;
      }
      const conflict = overlay && isConditional(b) ? this.checkConditions(b.ops, overlay) : null;
      if (conflict) {
        b.reject(conflict);
        continue;
      }
      bytes += size;
      for (const op of b.ops) {
        ++seq;
        if (op.kind === KIND_CREATE_STORE) continue;
        added++;
        if (overlay) setVersion(overlay, op, op.kind === KIND_DELETE ? ABSENT : seq);
      }
      if (group.length === 1) ops = b.ops;
      else for (const op of b.ops) ops.push(op);
      accepted.push(b);
      acceptedSeq.push(seq);
    }
    if (accepted.length === 0 && !forceCheckpoint) return;
    const checkpoint = (forceCheckpoint || this.walSize() + added >= this.walLimit || this.walBytes() >= WAL_MAX_BYTES) && this.checkpointFits(bytes);

    let built: BuiltFrame;
    try {
      // At the head; if the log's end comes first, again at the log's start (wrapping round).
      built = this.buildFrame(this.head, ops, first, checkpoint);
      if (!this.fitsAt(this.head, built.frame.length)) {
        this.trie.clearCache();
        if (!this.wraps() || !this.fitsAt(this.sb.logStart, built.frame.length)) throw this.deviceFull();
        built = this.buildFrame(this.sb.logStart, ops, first, checkpoint);
        if (!this.fitsAt(this.sb.logStart, built.frame.length)) throw this.deviceFull();
      }
    } catch (e) {
      this.building = null;
      this.reader.pending = null;
      this.trie.clearCache();
      const err = toForestError(e, this.path);
      for (const b of accepted) b.reject(err);
      return;
    }
    const { frame, offset, addrs, deltas, flush } = built;
    // A small durable commit is written with FUA instead of a write and a flush (see FUA_MAX).
    const fua = this.durability === 'sync' && frame.length <= FUA_MAX;
    const writes: DirtyBlock[] = [{ offset, data: frame, fua }];
    // A superblock names only a checkpoint that is already durable: it travels with the
    // commit after its checkpoint (or is written at close), never with the checkpoint itself.
    const sbWritten = this.unwrittenSuperblock;
    if (sbWritten) writes.push({ ...this.superblockWrite(sbWritten), fua });
    const prepared = this.prepareAhead(offset, frame.length);
    if (prepared) writes.push(prepared);
    try {
      await writeBlocks(this.device, this.pool, writes, { flush: this.durability === 'sync' && !fua });
    } catch (e) {
      // The frame may or may not be on the device: refuse further writes until reopened,
      // so that recovery decides, and an unacknowledged write never becomes visible here.
      this.reader.pending = null;
      this.trie.clearCache();
      this.failed = new ForestError('IO', `${this.path}: a commit failed (${(e as Error).message}); reads still work, writes are refused until the database is reopened`, { cause: e });
      for (const b of accepted) b.reject(this.failed);
      return;
    }
    this.reader.pending = null;
    this.bytesWritten += frame.length;
    if (prepared) {
      this.preparedEnd = prepared.offset + prepared.data.length;
      this.bytesWritten += prepared.data.length;
    }
    if (!flush) this.addToWal(ops, first, addrs, deltas);
    deltas.applyTo(this.live, this.stale, this.sb.logStart, this.segmentSize);
    this.lastSeq = seq;
    if (sbWritten) {
      this.sb = sbWritten;
      this.unwrittenSuperblock = null;
    }
    if (flush) this.adoptIndex(flush, seq, offset);
    this.adoptFrame(frame, flush !== null, offset);
    recycleFrame(frame);
    for (let i = 0; i < accepted.length; i++) accepted[i]!.resolve(acceptedSeq[i]!);
  }

  /**
   * Zeros for the free space after a small frame, once the frame reaches the end of the
   * space zeroed before: written with the commit, they make the next commits overwrite
   * blocks the file system has allocated already. A commit that writes into a hole of an
   * image file also commits the file's allocation on flush (a journal commit on ext4):
   * measured at 187 µs for a 4 KiB write + flush into a hole against 120 µs over written
   * blocks. Small frames only (PREPARE_SMALL). Only free space is zeroed: [frame end,
   * frame end + PREPARE_BYTES), cut at the tail once the log has wrapped or at the device's
   * end. null when nothing is needed.
   */
  private prepareAhead(offset: number, length: number): DirtyBlock | null {
    if (!this.prepareLog || length > PREPARE_SMALL) return null;
    const end = offset + length;
    // Wrapped, or moved. Zeroing runs up to 1.5 × PREPARE_BYTES past a frame's end (it starts
    // when half a step is left, at the zeroed end): a frame closer than twice the step below
    // the zeroed end is in the zeroed run. (Until session 10 the bound was one step, so a frame
    // 1 to 1.5 MiB below it restarted the run at its own end and zeroed the same blocks again:
    // 30 MB written for a 6 MB log of one-put commits.)
    if (offset < this.preparedEnd - 2 * PREPARE_BYTES || offset > this.preparedEnd) this.preparedEnd = offset;
    if (end + PREPARE_BYTES / 2 <= this.preparedEnd) return null;
    const from = Math.max(end, this.preparedEnd);
    const limit = offset < this.tail ? this.tail : this.device.geometry.capacity;
    const to = Math.min(from + PREPARE_BYTES, limit);
    if (to <= from) return null;
    this.zeros ??= new Uint8Array(PREPARE_BYTES);
    return { offset: from, data: this.zeros.subarray(0, to - from) };
  }

  /**
   * The frame of a commit, laid out at `offset`: records (write i with seq `first` + i, its
   * record at `addrs[i]`), and for a checkpoint the index. Only a checkpoint needs the writes
   * by key (its flush merges them into the index, and its space accounting is in the frame);
   * any other commit adds them to the WAL once it is durable (addToWal), without a map of its
   * own per commit, and without an entry object per write: those lived while the device wrote
   * the frame, long enough to be copied by a scavenge.
   */
  private buildFrame(offset: number, ops: readonly WriteOp[], first: number, checkpoint: boolean): BuiltFrame {
    const builder = new FrameBuilder(offset, this.bs);
    const deltas = new SpaceDeltas();
    const addrs = new Float64Array(ops.length);
    let recordBytes = 0;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const size = recordSize(op.key.bytes.length, op.value.length);
      const addr = builder.addRecord(op.kind, op.valueType, op.key.isString ? FLAG_STRING_KEY : 0, op.store.id, first + i, op.key.bytes, op.value);
      addrs[i] = addr;
      recordBytes += size;
      if (op.kind === KIND_CREATE_STORE) deltas.add(addressOffset(addr), size, ADD_STALE);
    }
    this.building = builder;
    this.reader.pending = builder;
    let flush: FlushResult | null = null;
    const last = first + ops.length - 1;
    if (checkpoint) flush = this.flushIndex(builder, this.newestByStore(ops, first, addrs, deltas), last, deltas, recordBytes);
    const frame = builder.seal({
      flags: flush ? FRAME_CHECKPOINT : 0, commit: this.lastCommit + 1, prevOffset: this.lastFrameOffset,
      nextOffset: offset + builder.sizeWith(0), lastSeq: last,
      checkpointOffset: flush ? offset : this.checkpointOffset, uuid: this.uuid, timestamp: Date.now(),
    });
    this.building = null;
    if (!flush) deltas.add(offset, frame.length - recordBytes, ADD_STALE);
    return { frame, offset, addrs, deltas, flush };
  }

  /**
   * A checkpoint's writes per store by key, the last write of a key superseding earlier ones
   * (in this commit or the WAL), with their space accounting added to `deltas`.
   */
  private newestByStore(ops: readonly WriteOp[], first: number, addrs: Float64Array, deltas: SpaceDeltas): Map<StoreState, Map<string, WalEntry>> {
    const newest = new Map<StoreState, Map<string, WalEntry>>();
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.kind === KIND_CREATE_STORE) continue;
      const entry = entryOfWrite(op, first + i, addrs[i]!, recordSize(op.key.bytes.length, op.value.length), keptValue(op));
      const store = op.store;
      let mine = newest.get(store);
      if (!mine) newest.set(store, (mine = new Map()));
      const old = mine.get(entry.str) ?? store.wal.get(entry.str, entry.key);
      countWrite(deltas, entry.addr, entry.size, old ? old.addr : -1, old ? old.size : 0);
      mine.set(entry.str, entry);
    }
    return newest;
  }

  /** After a commit without a checkpoint is durable: its writes join the WAL, in order. */
  private addToWal(ops: readonly WriteOp[], first: number, addrs: Float64Array, deltas: SpaceDeltas): void {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.kind === KIND_CREATE_STORE) continue;
      const wal = op.store.wal;
      const addr = addrs[i]!;
      const size = recordSize(op.key.bytes.length, op.value.length);
      const old = wal.setWrite(op, first + i, addr, size, keptValue(op));
      countWrite(deltas, addr, size, wal.addrAt(old), wal.sizeAt(old));
    }
  }

  /** After a checkpoint frame is durable: the new roots become current. */
  private adoptIndex(flush: FlushResult, seq: number, offset: number): void {
    this.adaptWalLimit(flush);
    for (const s of this.storesById.values()) s.wal.clear();
    for (const [store, res] of flush.results) {
      store.root = res.root;
      store.keys = res.keys;
      store.tombstones = res.tombstones;
    }
    this.setCheckpointSeq(seq);
    const base = this.unwrittenSuperblock ?? this.sb;
    this.unwrittenSuperblock = { ...base, generation: base.generation + 1, checkpointOffset: offset, checkpointCommit: this.lastCommit + 1 };
    this.checkpoints++;
  }

  /**
   * The flush policy. A flush rewrites every index node its entries land in: keys written
   * in order share a few nodes, random keys each touch a different one (a 4,096-entry flush
   * over 200k random keys rewrote ~2,900 leaves, 11 MiB, for 0.5 MiB of records). So while
   * flushes write more than one node per WAL_SPARSE entries, the WAL may grow, doubling up to
   * WAL_GROWTH × walThreshold; once they write fewer than one per WAL_DENSE, it shrinks back.
   * Measured (in-memory device, 200k keys, 100-byte values, batches of 1,000): random-order
   * load CPU 1.23 s at 4,096 and 0.71 s at 16,384; key order 0.30 s at 4,096 and 0.50 s at
   * 16,384 (the larger WAL index costs more per put than the flushes it saves).
   */
  private adaptWalLimit(flush: FlushResult): void {
    if (flush.entries === 0) return;
    const perNode = flush.entries / Math.max(1, flush.nodeBlocks);
    if (perNode < WAL_SPARSE) this.walLimit = Math.min(this.walLimit * 2, this.walThreshold * WAL_GROWTH);
    else if (perNode > WAL_DENSE) this.walLimit = Math.max(this.walLimit / 2, this.walThreshold);
  }

  // ---------------------------------------------------------------- compaction

  /**
   * Copies every live record (tombstones included) and a freshly built index forward to the
   * head, then frees everything before the copies. Writes wait while it runs; reads go on.
   * The space is reused once no snapshot opened before the compaction is still open.
   */
  async compact(opts: CompactOptions = {}): Promise<CompactResult> {
    this.assertOpen();
    this.checkWritable();
    if (typeof opts !== 'object' || opts === null) throw new ForestError('INVALID_ARGUMENT', 'compact options must be an object');
    if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw new ForestError('INVALID_ARGUMENT', 'onProgress must be a function');
    await this.whenIdle();
    this.checkWritable();
    const run = this.runCompaction(opts.onProgress ?? (() => {}));
    this.committing = run.then(() => {}, () => {});
    try {
      return await run;
    } finally {
      this.committing = null;
      if (this.queue.length > 0) void this.runCommits();
    }
  }

  private async runCompaction(onProgress: (p: CompactProgress) => void): Promise<CompactResult> {
    const t0 = performance.now();
    const usedBefore = this.usedBytes();
    if (this.walSize() > 0) await this.commitGroup([], true);
    if (this.failed) throw this.failed;
    if (this.walSize() > 0) throw new ForestError('DEVICE_FULL', `${this.path}: no room to flush the WAL index before compacting`);
    if (this.pendingTail && this.canReclaim()) await this.reclaim();
    let liveBytes = 0;
    for (const b of this.live) liveBytes += b;
    if (liveBytes + this.reserve() / 2 > this.freeBytes()) {
      throw new ForestError('DEVICE_FULL', `${this.path}: compaction needs about ${Math.ceil(liveBytes / 2 ** 20)} MiB free to copy the live data, and ${Math.floor(this.freeBytes() / 2 ** 20)} MiB are free`);
    }
    const stores = [...this.storesById.values()];
    const total = stores.reduce((n, s) => n + s.keys, 0);
    const deltas = new SpaceDeltas();
    const ops = new Map<StoreState, BatchOp[]>();
    let start = -1;
    let builder: FrameBuilder | null = null;
    let room = 0;
    let copied = 0;
    let recordBytes = 0;
    const seal = async (): Promise<void> => {
      const b = builder!;
      const frame = b.seal({
        flags: FRAME_COPY, commit: this.lastCommit + 1, prevOffset: this.lastFrameOffset, nextOffset: b.offset + b.sizeWith(0),
        lastSeq: this.lastSeq, checkpointOffset: this.checkpointOffset, uuid: this.uuid, timestamp: Date.now(),
      });
      await writeBlocks(this.device, this.pool, [{ offset: b.offset, data: frame }], { flush: false });
      deltas.add(b.offset, frame.length - recordBytes, ADD_STALE);
      this.bytesWritten += frame.length;
      this.adoptFrame(frame, false, b.offset);
      recycleFrame(frame);
      builder = null;
      recordBytes = 0;
    };
    const open = (need: number): FrameBuilder => {
      const at = this.placeFor(need);
      if (at === null) throw this.deviceFull();
      room = Math.min(COPY_FRAME_BYTES, this.contiguousFree(at));
      if (start < 0) start = at;
      return new FrameBuilder(at, this.bs, Math.min(room, 1 << 20));
    };
    try {
      for (const store of stores) {
        const list: BatchOp[] = [];
        ops.set(store, list);
        if (store.root === null) continue;
        for (const addr of this.guard(() => this.trie.range(store.root, {}))) {
          const rec = this.guard(() => this.readRecordSync(addr));
          const need = FRAME_HEADER_SIZE + align8(rec.size) + this.bs;
          if (builder && builder.sizeWith(align8(rec.size)) > room) await seal();
          builder ??= open(need);
          const moved = builder.addRecord(rec.kind, rec.valueType, rec.flags, rec.storeId, rec.seq, rec.key, rec.value);
          recordBytes += rec.size;
          list.push({ key: rec.key.slice(), value: moved });
          deltas.add(addressOffset(moved), rec.size, ADD_LIVE);
          if (++copied % 4096 === 0) onProgress({ phase: 'copy', done: copied, total });
        }
      }
      if (builder) await seal();
      onProgress({ phase: 'index', done: copied, total });
      // The new index, in one checkpoint frame: wherever it fits. Its tail is the copies' start
      // (the space before them freed at once) if nothing may still read that space, decided
      // once the tries are built, with the readers' gate closed until the superblock names the
      // checkpoint (see passGate).
      const tailFor = (): number => (this.closeGate() && start >= 0 && this.canReclaimAt(this.lastCommit + 1) ? start : this.tail);
      let built: Uint8Array | null = null;
      let at = this.head;
      let index: CompactIndex | null = null;
      for (const candidate of [this.head, this.sb.logStart]) {
        if (candidate !== this.head && !this.wraps()) break;
        this.trie.clearCache();
        const r = this.buildCompactCheckpoint(candidate, ops, deltas, tailFor);
        if (this.fitsAt(candidate, r.frame.length)) {
          built = r.frame;
          index = r;
          at = candidate;
          break;
        }
      }
      if (!built || !index) throw this.deviceFull();
      await writeBlocks(this.device, this.pool, [{ offset: at, data: built }], { flush: true });
      this.reader.pending = null;
      if (start < 0) start = at;
      this.bytesWritten += built.length;
      this.live = index.live;
      this.stale = index.stale;
      this.adoptIndex({ results: index.results, entries: 0, nodeBlocks: 0 }, this.lastSeq, at);
      this.adoptFrame(built, true, at);
      // The superblock must name the new checkpoint before anything older is overwritten.
      await this.writeSuperblock();
      this.openGate();
      this.pendingTail = { offset: start, commit: this.lastCommit };
      const reclaimed = this.canReclaim();
      if (reclaimed) await this.reclaim();
      const result: CompactResult = {
        records: copied, usedBefore, usedAfter: this.usedBytes(), reclaimed, seconds: (performance.now() - t0) / 1000,
      };
      onProgress({ phase: 'done', done: copied, total });
      return result;
    } catch (e) {
      this.openGate();
      this.building = null;
      this.reader.pending = null;
      this.trie.clearCache();
      // Copies already written are stale frames in the log; the state is unchanged.
      if (!(e instanceof ForestError) || e.code === 'IO') {
        this.failed = new ForestError('IO', `${this.path}: compaction failed (${(e as Error).message}); reads still work, writes are refused until the database is reopened`, { cause: e });
        throw this.failed;
      }
      throw e;
    }
  }

  /** The checkpoint that ends a compaction: fresh tries over the copies, and fresh accounting. */
  private buildCompactCheckpoint(offset: number, ops: Map<StoreState, BatchOp[]>, copyDeltas: SpaceDeltas, tailFor: () => number): CompactIndex {
    const builder = new FrameBuilder(offset, this.bs);
    this.building = builder;
    this.reader.pending = builder;
    const deltas = new SpaceDeltas();
    deltas.addAll(copyDeltas);
    const results = new Map<StoreState, IndexResult>();
    let nodeBytes = 0;
    for (const [store, list] of ops) {
      const res = list.length > 0 ? this.guard(() => this.trie.apply(null, list)) : null;
      results.set(store, { root: res ? res.root : null, keys: list.length, tombstones: store.tombstones });
      for (const blk of res?.blocks ?? []) deltas.add(blk, this.bs, ADD_LIVE);
      nodeBytes += (res?.blocks.length ?? 0) * this.bs;
    }
    const live = new Float64Array(this.live.length);
    const stale = new Float64Array(this.stale.length);
    const tail = tailFor();
    const metaOf = (): Uint8Array => encodeMeta({ ...this.metaSnapshot(results, this.lastSeq, live, stale), tail });
    const frameLength = builder.sizeWith(metaOf().length + 8);
    deltas.add(offset, frameLength - nodeBytes, ADD_STALE);
    deltas.applyTo(live, stale, this.sb.logStart, this.segmentSize);
    builder.addMeta(metaOf());
    const frame = builder.seal({
      flags: FRAME_CHECKPOINT, commit: this.lastCommit + 1, prevOffset: this.lastFrameOffset, nextOffset: offset + builder.sizeWith(0),
      lastSeq: this.lastSeq, checkpointOffset: offset, uuid: this.uuid, timestamp: Date.now(),
    });
    this.building = null;
    return { frame, results, live, stale };
  }

  /**
   * Closes the readers' gate (passGate) for the end of a compaction, if not closed already;
   * false if it could not be (then the compaction must not reclaim at once). True where there
   * are no reader locks: no reader in another process is held there.
   */
  private closeGate(): boolean {
    if (!this.gateClosed) this.gateClosed = this.readerLocks?.lock(COMPACT_GATE, 1) ?? true;
    return this.gateClosed;
  }

  /** Opens the gate if closeGate() closed it. */
  private openGate(): void {
    if (!this.gateClosed) return;
    this.gateClosed = false;
    this.readerLocks?.unlock(COMPACT_GATE, 1);
  }

  /** Whether no open snapshot or live iterator predates commit `commit`. */
  private canReclaimAt(commit: number): boolean {
    for (const s of this.snapshots) if (s.commit < commit) return false;
    for (const [c, open] of this.pins) if (open > 0 && c < commit) return false;
    return !(this.readerLocks?.taken(READER_LOCK_BASE, commit) ?? false);
  }

  /**
   * @internal Holds reuse of space freed after `commit` (default: the last one) back for an
   * iterator or a pending read; returns the commit to unpin (once). A count per commit, not an
   * object per iterator: seeks open and close one each, and a count that drops to 0 stays
   * until pins of other commits pile up.
   */
  pin(commit = this.lastCommit): number {
    const pins = this.pins;
    const open = pins.get(commit);
    if (open === undefined && pins.size >= 16) for (const [k, n] of pins) if (n === 0) pins.delete(k);
    pins.set(commit, (open ?? 0) + 1);
    return commit;
  }

  /** @internal Ends one pin() of `commit`. */
  unpin(commit: number): void {
    const open = this.pins.get(commit);
    if (open !== undefined && open > 0) this.pins.set(commit, open - 1);
  }

  private canReclaim(): boolean {
    return this.pendingTail !== null && this.canReclaimAt(this.pendingTail.commit);
  }

  /** Moves the tail to where the last compaction's copies begin, and trims what it frees. */
  private async reclaim(): Promise<void> {
    const to = this.pendingTail!.offset;
    const from = this.tail;
    this.pendingTail = null;
    if (to === from) return;
    const capacity = this.device.geometry.capacity;
    const ranges = from < to ? [[from, to]] : [[from, capacity], [this.sb.logStart, to]];
    this.tail = to;
    if (!this.device.geometry.trim) return;
    try {
      await this.device.submit(ranges.filter(([a, b]) => b! > a!).map(([a, b]) => ({ op: 'trim' as const, offset: a!, length: b! - a! })));
    } catch {
      // Trim is advice; the space is free either way.
    }
  }

  /** Where a frame of `need` bytes can start: the head, or the log's start after wrapping. */
  private placeFor(need: number): number | null {
    if (this.fitsAt(this.head, need)) return this.head;
    if (this.wraps() && this.fitsAt(this.sb.logStart, need)) return this.sb.logStart;
    return null;
  }

  /** Free bytes from `offset` (the head or the log's start) to the next live byte or the end. */
  private contiguousFree(offset: number): number {
    if (this.wrapped()) return this.tail - this.head - this.bs;
    if (offset === this.head) return this.device.geometry.capacity - this.head;
    return this.tail - this.sb.logStart - this.bs;
  }

  // ---------------------------------------------------------------- space: a circular log

  /** Whether the log has wrapped round (its live part is [tail, end) plus [start, head)). */
  private wrapped(): boolean {
    return this.head < this.tail;
  }

  /** Whether a frame at the head may wrap to the log's start (space was freed there). */
  private wraps(): boolean {
    return !this.wrapped() && this.tail > this.sb.logStart;
  }

  /** Whether [offset, offset + length) is free space for the next frame. */
  private fitsAt(offset: number, length: number): boolean {
    const capacity = this.device.geometry.capacity;
    if (this.wrapped()) return offset === this.head && offset + length < this.tail;
    if (offset === this.head) return offset + length <= capacity;
    return offset === this.sb.logStart && offset + length < this.tail;
  }

  /** Free bytes, wherever they are. */
  private freeBytes(): number {
    const capacity = this.device.geometry.capacity;
    if (this.wrapped()) return this.tail - this.head;
    return capacity - this.head + (this.tail - this.sb.logStart);
  }

  private usedBytes(): number {
    return this.device.geometry.capacity - this.freeBytes();
  }

  private reserve(): number {
    return Math.max(64 * this.bs, Math.floor(this.device.geometry.capacity / 64));
  }

  /** Whether [offset, offset + length) lies in the live part of the log. */
  private inLog(offset: number, length: number): boolean {
    const end = offset + length;
    if (this.wrapped()) return (offset >= this.tail && end <= this.device.geometry.capacity) || (offset >= this.sb.logStart && end <= this.head);
    return offset >= this.tail && end <= this.head;
  }

  /** A CONFLICT error if a write's condition fails against the state this batch would see. */
  private checkConditions(ops: readonly WriteOp[], earlier: Overlay): ForestError | null {
    const local: Overlay = new Map();
    for (const op of ops) {
      if (op.kind === KIND_CREATE_STORE) continue;
      if (op.ifAbsent || op.ifVersion >= 0) {
        // Earlier writes of this batch, then of this commit, then the committed state.
        const known = local.get(op.store)?.get(op.key.str) ?? earlier.get(op.store)?.get(op.key.str);
        const found = known === undefined ? this.handleOf(op.store).version(op.key)?.seq : known;
        const seq = found === ABSENT ? undefined : found;
        const name = describeKey(op.key);
        if (op.ifAbsent && seq !== undefined) return new ForestError('CONFLICT', `${op.store.name}: ${name} exists (version ${seq}); the write was conditional on its absence`);
        if (op.ifVersion >= 0 && seq !== op.ifVersion) {
          return new ForestError('CONFLICT', `${op.store.name}: ${name} is at version ${seq ?? 'none (absent)'}, not ${op.ifVersion}; nothing was written`);
        }
      }
      // The batch's own later conditions see this write. Its seq is not assigned yet, and
      // ifVersion can only name committed versions: PENDING matches none but is present.
      setVersion(local, op, op.kind === KIND_DELETE ? ABSENT : PENDING);
    }
    return null;
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

  private walBytes(): number {
    let n = 0;
    for (const s of this.storesById.values()) n += s.wal.bytes;
    return n;
  }

  /** A rough estimate of a flush's index nodes: checkpoint only if they seem to fit. */
  private checkpointFits(recordBytes: number): boolean {
    let bytes = recordBytes + 16 * this.bs + this.live.length * 16;
    for (const s of this.storesById.values()) bytes += 2 * (s.wal.keyBytes + 64 * s.wal.size);
    return bytes <= this.freeBytes();
  }

  /** After a frame at `offset` is durable: advance the head and keep its blocks in the cache. */
  private adoptFrame(frame: Uint8Array, checkpoint: boolean, offset: number): void {
    this.commits++;
    this.lastCommit++;
    this.lastFrameOffset = offset;
    if (checkpoint) this.checkpointOffset = offset;
    this.head = offset + frame.length;
    // Large frames are mostly large values: copying them into the cache cost more than the
    // reads it might save (a 16 MiB frame is a 16 MiB copy per commit). A large checkpoint
    // frame is mostly index nodes, which the trie caches decoded already: its records are
    // still kept, else reads of them go to the device (a full scan after a random load of
    // 200k keys read 420 blocks synchronously, ~70 ms of its 250 ms).
    const limit = Math.min(this.cache.maxBytes / 8, CACHE_FRAME_MAX);
    let keep = frame.length;
    if (keep > limit) {
      keep = roundUp(sealedRecordsEnd(frame), this.bs);
      if (keep > limit) keep = 0;
    }
    this.cache.setWritten(offset / this.bs, frame, keep);
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
  private flushIndex(builder: FrameBuilder, newest: Map<StoreState, Map<string, WalEntry>>, lastSeq: number, deltas: SpaceDeltas, recordBytes: number): FlushResult {
    const results = new Map<StoreState, IndexResult>();
    let nodeBytes = 0;
    let entries = 0;
    for (const store of this.storesById.values()) {
      const mine = newest.get(store);
      if (store.wal.size === 0 && !mine) continue;
      // Deletions stay in the index as tombstones (the changes feed reports them).
      const { ops, deletions } = store.wal.flushBatch(mine);
      entries += ops.length;
      const res = this.trie.apply(store.root, ops);
      let tombstones = store.tombstones + deletions;
      for (const blk of res.blocks) deltas.add(blk, this.bs, ADD_LIVE);
      nodeBytes += res.blocks.length * this.bs;
      for (const n of res.stale) deltas.add(n.addr, n.size, MAKE_STALE);
      // `replaced`: the values the batch overwrote (old records, now stale).
      for (const old of res.replaced) {
        deltas.add(addressOffset(old), this.recordSizeOf(old), MAKE_STALE);
        if (isTombstone(old)) tombstones--;
      }
      results.set(store, { root: res.root, keys: store.keys + res.inserted - res.removed, tombstones });
    }
    const live = this.live.slice();
    const stale = this.stale.slice();
    const metaLength = encodeMeta(this.metaSnapshot(results, lastSeq, live, stale)).length;
    const frameLength = builder.sizeWith(metaLength + 8);
    deltas.add(this.head, frameLength - recordBytes - nodeBytes, ADD_STALE);
    deltas.applyTo(live, stale, this.sb.logStart, this.segmentSize);
    builder.addMeta(encodeMeta(this.metaSnapshot(results, lastSeq, live, stale)));
    return { results, entries, nodeBlocks: nodeBytes / this.bs };
  }

  private metaSnapshot(results: Map<StoreState, IndexResult>, lastSeq: number, live: Float64Array, stale: Float64Array): CheckpointMeta {
    return {
      nextStoreId: this.nextStoreId,
      lastSeq,
      stores: [...this.storesById.values()].map((s) => {
        const r = results.get(s) ?? s;
        return { id: s.id, name: s.name, root: r.root, keys: r.keys, tombstones: r.tombstones };
      }),
      live,
      stale,
      tail: this.tail,
    };
  }

  private recordSizeOf(packed: number): number {
    const known = addressSize(packed);
    if (known > 0) return known;
    return peekRecordSize(this.reader.readSync(addressOffset(packed), RECORD_HEADER), 0);
  }

  // ---------------------------------------------------------------- reads

  /** @internal See LogReader.touchRecords. */
  touchRecords(addrs: Float64Array, n: number, blocks: (Uint8Array | undefined)[]): number {
    return this.reader.touchRecords(addrs, n, blocks);
  }

  /** @internal See LogReader.recordIn. */
  readRecordIn(packed: number, block: Uint8Array | undefined, into?: DecodedRecord): DecodedRecord {
    return this.reader.recordIn(packed, block, this.path, into);
  }

  readRecordSync(packed: number): DecodedRecord {
    return this.reader.recordSync(packed, this.path);
  }

  async readRecord(packed: number): Promise<DecodedRecord> {
    return this.reader.record(packed, this.path);
  }

  get trieIndex(): HBTrie {
    return this.trie;
  }

  decode(valueType: number, bytes: Uint8Array): Value {
    return decodeValue(valueType, bytes);
  }

  /** @internal An error from below as the ForestError a caller should see. */
  toError(e: unknown): Error {
    return toForestError(e, this.path);
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
    this.assertOpen();
    let records = 0;
    let wal = 0;
    for (const s of this.storesById.values()) {
      records += s.keys - s.tombstones;
      records += s.wal.size - s.wal.deletions();
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
      deviceBytes: capacity, usedBytes: this.usedBytes(), freeBytes: this.freeBytes(), bytesWritten: this.bytesWritten,
      cache: { bytes: this.cache.maxBytes, hits: this.cache.hits, misses: this.cache.misses, hitRate: this.cache.hitRate },
    };
  }

  /** Flushes the WAL index into the tries now (a checkpoint commit). */
  async checkpoint(): Promise<void> {
    this.assertOpen();
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
      for (const snap of [...this.snapshots]) snap.close();
    this.pendingTail = null;
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
      this.readerLocks?.close();
      this.pool.drain();
      await this.device.close();
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal Throws CLOSED once the database is closed. */
  assertOpen(): void {
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

interface IndexResult {
  root: number | null;
  keys: number;
  tombstones: number;
}

interface FlushResult {
  results: Map<StoreState, IndexResult>;
  /** Index entries the flush applied and the node blocks it wrote (for the flush policy). */
  entries: number;
  nodeBlocks: number;
}

export interface CompactProgress {
  phase: 'copy' | 'index' | 'done';
  /** Records copied so far. */
  done: number;
  /** Records to copy (index entries, tombstones included). */
  total: number;
}

export interface CompactOptions {
  onProgress?: (p: CompactProgress) => void;
}

export interface CompactResult {
  records: number;
  /** Device bytes the log used before and after. */
  usedBefore: number;
  usedAfter: number;
  /** False while a snapshot older than the compaction keeps the old space from reuse. */
  reclaimed: boolean;
  seconds: number;
}

/** Copies are written in frames of at most this size. */
const COPY_FRAME_BYTES = 8 * 2 ** 20;

/** A compaction's closing checkpoint: its bytes, the new roots and the recomputed accounting. */
interface CompactIndex {
  frame: Uint8Array;
  results: Map<StoreState, IndexResult>;
  live: Float64Array;
  stale: Float64Array;
}

/**
 * A write's space accounting: its record is live, and the record of the version it replaces
 * (at `oldAddr`, of `oldSize` bytes; none when oldAddr is -1) stale.
 */
function countWrite(deltas: SpaceDeltas, addr: number, size: number, oldAddr: number, oldSize: number): void {
  deltas.add(addressOffset(addr), size, ADD_LIVE);
  if (oldAddr >= 0) deltas.add(addressOffset(oldAddr), oldSize, MAKE_STALE);
}

/** The encoded value a WAL entry keeps in memory: a small one; a larger one is read from its record. */
function keptValue(op: WriteOp): Uint8Array | null {
  return op.value.length <= SMALL_VALUE ? op.value : null;
}

interface BuiltFrame {
  frame: Uint8Array;
  offset: number;
  /** Write i's record address. */
  addrs: Float64Array;
  deltas: SpaceDeltas;
  flush: FlushResult | null;
}

/** Per store, key → the version a write leaves: its seq, PENDING (same batch) or ABSENT (deleted). */
type Overlay = Map<StoreState, Map<string, number>>;
const PENDING = 0;
const ABSENT = -1;

function setVersion(o: Overlay, op: WriteOp, version: number): void {
  let m = o.get(op.store);
  if (!m) o.set(op.store, (m = new Map()));
  m.set(op.key.str, version);
}

function isConditional(b: PendingBatch): boolean {
  return b.ops.some((op) => op.ifAbsent || op.ifVersion >= 0);
}

function describeKey(k: KeyBytes): string {
  const text = k.isString ? JSON.stringify(Buffer.from(k.bytes).toString('utf8')) : `0x${Buffer.from(k.bytes).toString('hex')}`;
  return text.length > 80 ? `key ${text.slice(0, 77)}...` : `key ${text}`;
}

/** Calls `f` for each record of a frame with the record's device offset. */
function forEachRecord(frame: Uint8Array, h: FrameHeader, offset: number, path: string, f: (rec: DecodedRecord, at: number) => void): void {
  let at = FRAME_HEADER_SIZE;
  for (let i = 0; i < h.recordCount; i++) {
    at = align8(at);
    const rec = decodeRecord(frame, at, `${path} offset ${offset + at}`);
    f(rec, offset + at);
    at += rec.size;
  }
}

/** The WAL entry of a record read back from the log (its bytes copied out of the frame). */
function walEntryOf(rec: DecodedRecord, at: number): WalEntry {
  const key = copyBytes(rec.key);
  return {
    str: latin1(key), key, keyIsString: (rec.flags & FLAG_STRING_KEY) !== 0, seq: rec.seq,
    addr: packAddress(at, rec.size, rec.kind === KIND_DELETE), deleted: rec.kind === KIND_DELETE, valueType: rec.valueType,
    value: rec.value.length <= SMALL_VALUE ? copyBytes(rec.value) : null, size: rec.size,
  };
}

export function toForestError(e: unknown, path: string): Error {
  if (e instanceof ForestError) return e;
  const code = (e as { code?: string }).code;
  if (code === 'CORRUPT') return new ForestError('CORRUPT', `${path}: ${(e as Error).message}`, { cause: e });
  return e as Error;
}
