/**
 * A log record: one put, delete or store creation, self-checking with CRC32C.
 *
 *   0  u8   kind            (1 put, 2 delete, 3 create store)
 *   1  u8   value type      (see codec.ts)
 *   2  u16  flags           (bit 0: the key was given as a string)
 *   4  u32  store id
 *   8  u64  sequence number
 *  16  u32  key length
 *  20  u32  value length
 *  24  key, then value
 *  end u32  CRC32C of everything before it
 *
 * Records start at 8-byte-aligned offsets. An index entry's value packs the record's
 * offset and size (see packAddress), so space accounting never has to read a record.
 */
import { ForestError } from '../errors.js';
import { crc32c } from './checksum.js';

export const KIND_PUT = 1;
export const KIND_DELETE = 2;
export const KIND_CREATE_STORE = 3;
export const RECORD_HEADER = 24;
export const RECORD_OVERHEAD = RECORD_HEADER + 4;
export const FLAG_STRING_KEY = 1;

export interface RecordFields {
  kind: number;
  valueType: number;
  flags: number;
  storeId: number;
  seq: number;
  key: Uint8Array;
  value: Uint8Array;
}

/**
 * A decoded record: its header fields, and its key and value as views of the memory it was
 * decoded from, made only when asked for (`key`, `value`). The read paths use `buf` and the
 * offsets instead (keyAt..valueAt is the key, valueAt..valueEnd the value): a scan or a get
 * then makes no view at all, and compares or copies the bytes where they lie.
 */
export class DecodedRecord implements RecordFields {
  private k: Uint8Array | null = null;
  private v: Uint8Array | null = null;

  constructor(
    public kind: number,
    public valueType: number,
    public flags: number,
    public storeId: number,
    public seq: number,
    /** Bytes the record occupies (header, key, value, CRC). */
    public size: number,
    /** The memory the record lies in (a cached block, a frame, a copy). */
    public buf: Uint8Array,
    public keyAt: number,
    public valueAt: number,
    public valueEnd: number,
  ) {}

  /** Makes this object another record (decodeRecord's `into`). */
  refill(kind: number, valueType: number, flags: number, storeId: number, seq: number, size: number, buf: Uint8Array, keyAt: number, valueAt: number, valueEnd: number): this {
    this.kind = kind;
    this.valueType = valueType;
    this.flags = flags;
    this.storeId = storeId;
    this.seq = seq;
    this.size = size;
    this.buf = buf;
    this.keyAt = keyAt;
    this.valueAt = valueAt;
    this.valueEnd = valueEnd;
    this.k = null;
    this.v = null;
    return this;
  }

  get key(): Uint8Array {
    return (this.k ??= this.buf.subarray(this.keyAt, this.valueAt));
  }

  set key(k: Uint8Array) {
    this.k = k;
  }

  get value(): Uint8Array {
    return (this.v ??= this.buf.subarray(this.valueAt, this.valueEnd));
  }

  set value(v: Uint8Array) {
    this.v = v;
  }
}

export function recordSize(keyLength: number, valueLength: number): number {
  return RECORD_OVERHEAD + keyLength + valueLength;
}

/**
 * Writes a record's 24-byte header at out[at..]. Byte stores, not a DataView: this runs once
 * per put and a DataView per record was a measurable share of a batched load.
 */
export function writeRecordHeader(
  out: Uint8Array, at: number, kind: number, valueType: number, flags: number, storeId: number,
  seq: number, keyLength: number, valueLength: number,
): void {
  out[at] = kind;
  out[at + 1] = valueType;
  out[at + 2] = flags;
  out[at + 3] = flags >>> 8;
  wr32(out, at + 4, storeId);
  wr32(out, at + 8, seq >>> 0);
  wr32(out, at + 12, Math.floor(seq / 4294967296));
  wr32(out, at + 16, keyLength);
  wr32(out, at + 20, valueLength);
}

/**
 * Writes a record at out[at..] without its trailing checksum (the 4 bytes after the value
 * are left for the caller: FrameBuilder checksums a frame's records in one batch); returns
 * the record's size, checksum included. Fields, not a RecordFields object: the frame builder
 * calls it once per put.
 */
export function writeRecordBody(
  out: Uint8Array, at: number, kind: number, valueType: number, flags: number, storeId: number,
  seq: number, key: Uint8Array, value: Uint8Array,
): number {
  const kl = key.length;
  writeRecordHeader(out, at, kind, valueType, flags, storeId, seq, kl, value.length);
  const k = at + RECORD_HEADER;
  // Short keys: a loop beats set()'s call overhead.
  if (kl <= 32) for (let i = 0; i < kl; i++) out[k + i] = key[i]!;
  else out.set(key, k);
  out.set(value, k + kl);
  return RECORD_OVERHEAD + kl + value.length;
}

/** Writes a record at out[at..]; returns its size. */
export function encodeRecord(out: Uint8Array, at: number, r: RecordFields): number {
  const size = writeRecordBody(out, at, r.kind, r.valueType, r.flags, r.storeId, r.seq, r.key, r.value);
  const end = at + size - 4;
  wr32(out, end, crc32c(out, at, end));
  return size;
}

/** Size of the record whose header starts at buf[at..], or -1 if the header is implausible. */
export function peekRecordSize(buf: Uint8Array, at: number): number {
  if (buf.length - at < RECORD_HEADER) return -1;
  const kind = buf[at]!;
  if (kind < KIND_PUT || kind > KIND_CREATE_STORE) return -1;
  return RECORD_OVERHEAD + rd32(buf, at + 16) + rd32(buf, at + 20);
}

/**
 * Memory whose records need no checksum test when decoded, keyed by ArrayBuffer:
 * - `true`: copies of what this process wrote itself (the block cache's copies of a committed
 *   frame), as opposed to bytes read from the device;
 * - a bitmap (one bit per 8-byte-aligned offset: records start at such offsets): a block the
 *   cache holds as read from the device, and which of its records have been verified.
 * Such memory is never written again (the cache owns private copies and nothing writes into
 * what it hands out), so a record verified once in it stays verified: testing its checksum
 * again would compute the same answer over the same bytes. Corruption is still detected:
 * every record is verified the first time it is decoded from bytes read from the device,
 * and bytes outside the cache (a read across blocks, a frame being recovered) are verified
 * on every decode.
 */
const verifiedMemory = new WeakMap<ArrayBufferLike, true | Uint8Array>();

/** Marks `bytes` (all of its ArrayBuffer) as written by this process and never changed since. */
export function markVerified(bytes: Uint8Array): void {
  verifiedMemory.set(bytes.buffer, true);
}

/**
 * Marks `bytes` (all of its ArrayBuffer, which nothing writes into any more) as memory whose
 * records, once verified, need not be verified again (the block cache's blocks read from the
 * device).
 */
export function markImmutable(bytes: Uint8Array): void {
  const ab = bytes.buffer;
  if (!verifiedMemory.has(ab)) verifiedMemory.set(ab, new Uint8Array((ab.byteLength + 63) >>> 6));
}

/**
 * Decodes and verifies the record at buf[at..]; throws CORRUPT naming `where` (followed by
 * "offset <whereOffset>" when given: the message is built only on failure) if it is bad.
 * The checksum is tested unless the memory is marked verified (markVerified), or the record
 * was verified before in memory marked immutable (markImmutable). With `into`, that object is
 * refilled and returned instead of a new one (a range reads record after record).
 */
export function decodeRecord(buf: Uint8Array, at: number, where: string, whereOffset?: number, into?: DecodedRecord): DecodedRecord {
  const kind = buf.length - at >= RECORD_HEADER ? buf[at]! : 0;
  if (kind < KIND_PUT || kind > KIND_CREATE_STORE) throw corruptRecord(where, whereOffset, 'its header is damaged');
  const keyLength = rd32(buf, at + 16);
  const valueLength = rd32(buf, at + 20);
  const size = RECORD_OVERHEAD + keyLength + valueLength;
  if (at + size > buf.length) throw corruptRecord(where, whereOffset, 'its header is damaged');
  const end = at + size - 4;
  const known = verifiedMemory.get(buf.buffer);
  if (known !== true) {
    // Offsets in the ArrayBuffer, in 8-byte units (a record at an unaligned offset is never
    // remembered: it is verified each time).
    const unit = (buf.byteOffset + at) / 8;
    const bit = known !== undefined && Number.isInteger(unit) ? unit : -1;
    if (bit < 0 || (known![bit >>> 3]! & (1 << (bit & 7))) === 0) {
      if (rd32(buf, end) !== crc32c(buf, at, end)) throw corruptRecord(where, whereOffset, 'its checksum does not match');
      if (bit >= 0) known![bit >>> 3]! |= 1 << (bit & 7);
    }
  }
  const k = at + RECORD_HEADER;
  const valueType = buf[at + 1]!;
  const flags = buf[at + 2]! | (buf[at + 3]! << 8);
  const storeId = rd32(buf, at + 4);
  const seq = rd32(buf, at + 8) + rd32(buf, at + 12) * 4294967296;
  if (into !== undefined) return into.refill(kind, valueType, flags, storeId, seq, size, buf, k, k + keyLength, end);
  return new DecodedRecord(kind, valueType, flags, storeId, seq, size, buf, k, k + keyLength, end);
}

/** Little-endian u32 at b[o..o+4) (unsigned). */
export function rd32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}


function corruptRecord(where: string, whereOffset: number | undefined, why: string): ForestError {
  const at = whereOffset === undefined ? where : `${where} offset ${whereOffset}`;
  return new ForestError('CORRUPT', `the record at ${at} is corrupt: ${why}`);
}

/*
 * An index value packs where a record is, how big it is, and whether it is a tombstone:
 *   value = (offset / 8) * 8192 + tombstone * 4096 + units,
 *   units = ceil(size / 8) when ≤ 4095, else 0
 * so offsets up to 8 TiB and sizes up to 32 KiB are known without reading (a larger record,
 * units 0, has its size read from its header), and a deleted key is recognised in the index
 * without reading its record. Tombstones are at most 28 + 16384 bytes, so their size is
 * always known.
 */
const UNITS = 8192;
const TOMBSTONE = 4096;
const MAX_OFFSET = 2 ** 40 * 8;

export function packAddress(offset: number, size: number, tombstone = false): number {
  if (offset % 8 !== 0 || offset >= MAX_OFFSET) throw new ForestError('INVALID_ARGUMENT', `record offset ${offset} cannot be indexed`);
  const units = Math.ceil(size / 8);
  return (offset / 8) * UNITS + (tombstone ? TOMBSTONE : 0) + (units < TOMBSTONE ? units : 0);
}

export function addressOffset(packed: number): number {
  return Math.floor(packed / UNITS) * 8;
}

/** The record's size rounded up to 8 bytes, or 0 when it must be read from the header. */
export function addressSize(packed: number): number {
  return (packed % TOMBSTONE) * 8;
}

/** Whether the index entry is a deletion (its record is a tombstone). */
export function isTombstone(packed: number): boolean {
  return packed % UNITS >= TOMBSTONE;
}

export const MAX_DEVICE_BYTES = MAX_OFFSET;
