import { FRAME_HEADER_SIZE, sealFrame, type FrameHeader } from './format.js';
import { encodeRecord, KIND_DELETE, packAddress, recordSize, type RecordFields } from './record.js';

/**
 * Lays out one commit frame in memory: header space, records at 8-byte-aligned offsets,
 * index node blocks at block-aligned offsets, the checkpoint meta, and padding to a whole
 * number of blocks. Addresses it hands out are device offsets.
 */
export class FrameBuilder {
  bytes: Uint8Array;
  length = FRAME_HEADER_SIZE;
  recordCount = 0;
  recordsEnd = FRAME_HEADER_SIZE;
  metaOffset = 0;
  metaLength = 0;

  constructor(readonly offset: number, readonly blockSize: number, initial = 64 * 1024) {
    this.bytes = new Uint8Array(Math.max(initial, blockSize));
  }

  /** Bytes the frame would take with `extra` more bytes of records. */
  sizeWith(extra: number): number {
    return roundUp(align8(this.length) + extra, this.blockSize);
  }

  /** Appends a record; returns its packed address and its size. */
  addRecord(r: RecordFields): { addr: number; size: number } {
    const at = align8(this.length);
    const size = recordSize(r.key.length, r.value.length);
    this.ensure(at + size);
    this.bytes.fill(0, this.length, at);
    encodeRecord(this.bytes, at, r);
    this.length = at + size;
    this.recordsEnd = this.length;
    this.recordCount++;
    return { addr: packAddress(this.offset + at, size, r.kind === KIND_DELETE), size };
  }

  /** Reserves `count` whole blocks; returns their device addresses. */
  allocateBlocks(count: number): number[] {
    const at = roundUp(this.length, this.blockSize);
    this.ensure(at + count * this.blockSize);
    this.bytes.fill(0, this.length, at);
    this.length = at + count * this.blockSize;
    return Array.from({ length: count }, (_, i) => this.offset + at + i * this.blockSize);
  }

  writeBlock(addr: number, data: Uint8Array): void {
    this.bytes.set(data, addr - this.offset);
  }

  addMeta(meta: Uint8Array): void {
    const at = align8(this.length);
    this.ensure(at + meta.length);
    this.bytes.fill(0, this.length, at);
    this.bytes.set(meta, at);
    this.metaOffset = at;
    this.metaLength = meta.length;
    this.length = at + meta.length;
  }

  /** Pads to whole blocks, writes the header and checksums; returns the frame's bytes. */
  seal(h: Omit<FrameHeader, 'length' | 'recordCount' | 'recordsEnd' | 'metaOffset' | 'metaLength'>): Uint8Array {
    const total = roundUp(this.length, this.blockSize);
    this.ensure(total);
    this.bytes.fill(0, this.length, total);
    const frame = this.bytes.subarray(0, total);
    sealFrame(frame, { ...h, length: total, recordCount: this.recordCount, recordsEnd: this.recordsEnd, metaOffset: this.metaOffset, metaLength: this.metaLength });
    return frame;
  }

  private ensure(n: number): void {
    if (n <= this.bytes.length) return;
    let cap = this.bytes.length * 2;
    while (cap < n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.bytes.subarray(0, this.length));
    this.bytes = b;
  }
}

export function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

export function roundUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}
