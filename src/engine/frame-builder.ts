import { allocAligned } from '../io/index.js';
import { crc32cRecords } from './checksum.js';
import { FRAME_HEADER_SIZE, sealFrame, type FrameHeader } from './format.js';
import { KIND_DELETE, packAddress, recordSize, writeRecordBody } from './record.js';

/**
 * Lays out one commit frame in memory: header space, records at 8-byte-aligned offsets,
 * index node blocks at block-aligned offsets, the checkpoint meta, and padding to a whole
 * number of blocks. Addresses it hands out are device offsets.
 *
 * Records are laid out at once but written into memory only when the frame's bytes are first
 * needed (sealing, an index node written into the frame, a read of the frame being built):
 * by then the frame's size is known, so it is allocated once, block-aligned (writeBlocks hands
 * it to the device without another copy), instead of growing by doubling. So a record's key
 * and value arrays must not change between addRecord() and the first read of the frame (in the
 * engine both happen in one synchronous stretch of a commit). The records' checksums are
 * computed together, in one native call where the library is present.
 */
export class FrameBuilder {
  private buf: Uint8Array | null = null;
  /** The allocation `buf` is a view of (a recycled frame may be larger than needed). */
  private whole: Uint8Array | null = null;
  length = FRAME_HEADER_SIZE;
  recordCount = 0;
  recordsEnd = FRAME_HEADER_SIZE;
  metaOffset = 0;
  metaLength = 0;
  /**
   * Records laid out but not written into `buf` yet: per record, DEFERRED_NUMS numbers (where
   * it goes, kind, value type, flags, store id, seq) and its key and value. Flat arrays, not an
   * object per record: this runs once per put.
   */
  private deferredNums: number[] = [];
  private deferredBytes: Uint8Array[] = [];
  /**
   * Records written whose trailing checksum is not: [offset, length before the CRC] pairs.
   * Borrowed from a spare (takeSpans) when the first record is placed and handed back once
   * they are summed: a fresh Uint32Array per commit is an off-heap allocation, and with the
   * header's BigInts it made sealing a one-record frame cost ~10 µs.
   */
  private spans: Uint32Array | null = null;
  private unsummed = 0;

  /** `initial` is a hint for the first allocation (bytes); the frame grows as needed. */
  constructor(readonly offset: number, readonly blockSize: number, private readonly initial = 0) {}

  /** The frame's bytes so far (every record in place and checksummed). */
  get bytes(): Uint8Array {
    this.materialize(0);
    this.finishRecords();
    return this.buf!;
  }

  /** Bytes the frame would take with `extra` more bytes of records. */
  sizeWith(extra: number): number {
    return roundUp(align8(this.length) + extra, this.blockSize);
  }

  /** Appends a record; returns its packed address (its size is recordSize(key, value)). */
  addRecord(kind: number, valueType: number, flags: number, storeId: number, seq: number, key: Uint8Array, value: Uint8Array): number {
    const at = align8(this.length);
    const size = recordSize(key.length, value.length);
    if (this.buf !== null && at + size <= this.buf.length) {
      this.place(at, size, kind, valueType, flags, storeId, seq, key, value);
    } else {
      this.deferredNums.push(at, kind, valueType, flags, storeId, seq);
      this.deferredBytes.push(key, value);
    }
    this.length = at + size;
    this.recordsEnd = this.length;
    this.recordCount++;
    return packAddress(this.offset + at, size, kind === KIND_DELETE);
  }

  /** Writes the checksums of the records placed since the last call. */
  finishRecords(): void {
    if (this.unsummed === 0) return;
    crc32cRecords(this.buf!, this.spans!, this.unsummed);
    this.unsummed = 0;
    if (this.spans!.length <= SPANS_KEEP) spareSpans = this.spans;
    this.spans = null;
  }

  /** Reserves `count` whole blocks; returns their device addresses. */
  allocateBlocks(count: number): number[] {
    const at = roundUp(this.length, this.blockSize);
    this.length = at + count * this.blockSize;
    const out = new Array<number>(count);
    for (let i = 0; i < count; i++) out[i] = this.offset + at + i * this.blockSize;
    return out;
  }

  writeBlock(addr: number, data: Uint8Array): void {
    // The index writes its nodes here during a checkpoint: leave room for more of them.
    this.materialize(this.length);
    this.buf!.set(data, addr - this.offset);
  }

  addMeta(meta: Uint8Array): void {
    const at = align8(this.length);
    this.length = at + meta.length;
    this.materialize(0);
    this.buf!.set(meta, at);
    this.metaOffset = at;
    this.metaLength = meta.length;
  }

  /** Pads to whole blocks, writes the header and checksums; returns the frame's bytes. */
  seal(h: Omit<FrameHeader, 'length' | 'recordCount' | 'recordsEnd' | 'metaOffset' | 'metaLength'>): Uint8Array {
    const total = roundUp(this.length, this.blockSize);
    this.materialize(0);
    this.finishRecords();
    const frame = this.buf!.subarray(0, total);
    outstanding(frame, this.whole!);
    // Every field spelled out: one object shape for every header.
    sealFrame(frame, {
      flags: h.flags, commit: h.commit, length: total, prevOffset: h.prevOffset, nextOffset: h.nextOffset, lastSeq: h.lastSeq,
      checkpointOffset: h.checkpointOffset, recordCount: this.recordCount, recordsEnd: this.recordsEnd, metaOffset: this.metaOffset,
      metaLength: this.metaLength, uuid: h.uuid, timestamp: h.timestamp,
    });
    return frame;
  }

  /**
   * Makes `buf` hold [0, length) plus `headroom` bytes and writes the deferred records into it.
   * Fresh memory is zeroed, so alignment gaps, reserved blocks and padding read as zero.
   */
  private materialize(headroom: number): void {
    const need = roundUp(this.length, this.blockSize);
    if (this.buf === null || need > this.buf.length) {
      const cap = Math.max(need, roundUp(this.length + headroom, this.blockSize), roundUp(this.initial, this.blockSize));
      const whole = allocFrame(cap, Math.max(4096, this.blockSize));
      const b = whole.subarray(0, cap);
      if (this.buf !== null) {
        b.set(this.buf);
        keep(this.whole!);
      }
      this.buf = b;
      this.whole = whole;
    }
    const nums = this.deferredNums;
    const refs = this.deferredBytes;
    const n = refs.length / 2;
    if (n === 0) return;
    for (let i = 0; i < n; i++) {
      const j = i * DEFERRED_NUMS;
      const key = refs[2 * i]!;
      const value = refs[2 * i + 1]!;
      this.place(nums[j]!, recordSize(key.length, value.length), nums[j + 1]!, nums[j + 2]!, nums[j + 3]!, nums[j + 4]!, nums[j + 5]!, key, value);
    }
    nums.length = 0;
    refs.length = 0;
  }

  /** Writes a record (without its checksum, which is batched) into `buf` at `at`. */
  private place(at: number, size: number, kind: number, valueType: number, flags: number, storeId: number, seq: number, key: Uint8Array, value: Uint8Array): void {
    writeRecordBody(this.buf!, at, kind, valueType, flags, storeId, seq, key, value);
    const n = this.unsummed;
    let spans = this.spans;
    if (spans === null) {
      spans = this.spans = spareSpans ?? new Uint32Array(64);
      spareSpans = null;
    } else if (2 * n + 2 > spans.length) {
      const grown = new Uint32Array(spans.length * 2);
      grown.set(spans);
      spans = this.spans = grown;
    }
    spans[2 * n] = at;
    spans[2 * n + 1] = size - 4;
    this.unsummed = n + 1;
  }
}

/*
 * Frame memory is reused once the engine hands a written frame back (recycleFrame):
 * allocating and first touching a fresh 16 MiB buffer per commit (page faults, then garbage
 * collection of the external memory) cost more than building the frame itself (measured: 1 GiB
 * of 64 KiB values in 16 MiB commits, 0.95-1.13 s of CPU without reuse, 0.60-0.62 s with it),
 * and a small commit's fresh buffer costs ~3 µs. A few buffers are kept, none above 32 MiB.
 */
const RECYCLE_MAX = 32 << 20;
/** The span array of the last builder whose records were summed, for the next one. */
let spareSpans: Uint32Array | null = null;
/** A larger span array (a frame of many records) is not kept. */
const SPANS_KEEP = 8192;
const RECYCLE_KEEP = 4;
const spares: Uint8Array[] = [];
/**
 * Frames returned by seal() and not recycled yet, with the allocation behind each. Plain
 * arrays of a few, not a WeakSet and WeakMap: those cost several µs per commit in insertions
 * and in the collector's ephemeron work. A frame never handed back (a failed write) is
 * forgotten once OUTSTANDING_MAX newer ones are out, and then simply collected.
 */
const outFrames: Uint8Array[] = [];
const outWholes: Uint8Array[] = [];
const OUTSTANDING_MAX = 16;

function outstanding(frame: Uint8Array, whole: Uint8Array): void {
  outFrames.push(frame);
  outWholes.push(whole);
  if (outFrames.length > OUTSTANDING_MAX) {
    outFrames.shift();
    outWholes.shift();
  }
}

function allocFrame(size: number, align: number): Uint8Array {
  let best = -1;
  for (let i = 0; i < spares.length; i++) {
    if (spares[i]!.length >= size && (best < 0 || spares[i]!.length < spares[best]!.length)) best = i;
  }
  // A spare much larger than needed stays for a larger frame.
  if (best >= 0 && spares[best]!.length <= 4 * size + (1 << 20)) {
    const b = spares.splice(best, 1)[0]!;
    b.fill(0, 0, size);
    return b;
  }
  return allocAligned(size, align);
}

/** Makes an allocation no frame uses any more available to later frames. */
function keep(whole: Uint8Array): void {
  if (whole.length > RECYCLE_MAX || spares.includes(whole)) return;
  spares.push(whole);
  if (spares.length > RECYCLE_KEEP) spares.shift();
}

/**
 * Hands the memory of a frame returned by seal() back for later frames. Call it only once
 * nothing refers to the frame's bytes any more: after writeBlocks resolved and the blocks the
 * cache keeps were copied (adoptFrame). The LogReader copies what it reads of a frame being
 * built, so no view of it outlives the commit. Anything else, and a second call, is ignored.
 */
export function recycleFrame(frame: Uint8Array): void {
  const i = outFrames.indexOf(frame);
  if (i < 0) return;
  const whole = outWholes[i]!;
  outFrames.splice(i, 1);
  outWholes.splice(i, 1);
  keep(whole);
}

const DEFERRED_NUMS = 6;

export function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

export function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}
