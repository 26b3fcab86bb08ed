import { allocAligned } from '../io/index.js';
import { crc32cRecords } from './checksum.js';
import { FRAME_HEADER_SIZE, sealFrame, type FrameHeader } from './format.js';
import { encodeRecordBody, KIND_DELETE, packAddress, recordSize, type RecordFields } from './record.js';

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
  length = FRAME_HEADER_SIZE;
  recordCount = 0;
  recordsEnd = FRAME_HEADER_SIZE;
  metaOffset = 0;
  metaLength = 0;
  /** Records laid out but not written into `buf` yet, and where each goes. */
  private deferred: RecordFields[] = [];
  private deferredAt: number[] = [];
  /** Records written whose trailing checksum is not: [offset, length before the CRC] pairs. */
  private spans = new Uint32Array(64);
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

  /** Appends a record; returns its packed address and its size. */
  addRecord(r: RecordFields): { addr: number; size: number } {
    const at = align8(this.length);
    const size = recordSize(r.key.length, r.value.length);
    if (this.buf !== null && at + size <= this.buf.length) {
      this.place(r, at, size);
    } else {
      this.deferred.push(r);
      this.deferredAt.push(at);
    }
    this.length = at + size;
    this.recordsEnd = this.length;
    this.recordCount++;
    return { addr: packAddress(this.offset + at, size, r.kind === KIND_DELETE), size };
  }

  /** Writes the checksums of the records placed since the last call. */
  finishRecords(): void {
    if (this.unsummed === 0) return;
    crc32cRecords(this.buf!, this.spans, this.unsummed);
    this.unsummed = 0;
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
    sealed.add(frame);
    sealFrame(frame, { ...h, length: total, recordCount: this.recordCount, recordsEnd: this.recordsEnd, metaOffset: this.metaOffset, metaLength: this.metaLength });
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
      const b = allocFrame(cap, Math.max(4096, this.blockSize));
      if (this.buf !== null) {
        b.set(this.buf);
        keep(this.buf);
      }
      this.buf = b;
    }
    const n = this.deferred.length;
    if (n === 0) return;
    for (let i = 0; i < n; i++) {
      const r = this.deferred[i]!;
      this.place(r, this.deferredAt[i]!, recordSize(r.key.length, r.value.length));
    }
    this.deferred.length = 0;
    this.deferredAt.length = 0;
  }

  /** Writes a record (without its checksum, which is batched) into `buf` at `at`. */
  private place(r: RecordFields, at: number, size: number): void {
    encodeRecordBody(this.buf!, at, r);
    const n = this.unsummed;
    if (2 * n + 2 > this.spans.length) {
      const grown = new Uint32Array(this.spans.length * 2);
      grown.set(this.spans);
      this.spans = grown;
    }
    this.spans[2 * n] = at;
    this.spans[2 * n + 1] = size - 4;
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
const RECYCLE_KEEP = 4;
const spares: Uint8Array[] = [];
/** The whole aligned allocation behind each frame buffer (keyed by its ArrayBuffer). */
const allocation = new WeakMap<ArrayBufferLike, Uint8Array>();
/** Frames returned by seal() and not recycled yet. */
const sealed = new WeakSet<Uint8Array>();

function allocFrame(size: number, align: number): Uint8Array {
  let best = -1;
  for (let i = 0; i < spares.length; i++) {
    if (spares[i]!.length >= size && (best < 0 || spares[i]!.length < spares[best]!.length)) best = i;
  }
  // A spare much larger than needed stays for a larger frame.
  if (best >= 0 && spares[best]!.length <= 4 * size + (1 << 20)) {
    const b = spares.splice(best, 1)[0]!;
    b.fill(0, 0, size);
    return b.subarray(0, size);
  }
  const b = allocAligned(size, align);
  if (size <= RECYCLE_MAX) allocation.set(b.buffer, b);
  return b;
}

function keep(b: Uint8Array): void {
  const whole = allocation.get(b.buffer);
  if (!whole || spares.includes(whole)) return;
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
  if (sealed.delete(frame)) keep(frame);
}

export function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

export function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}
