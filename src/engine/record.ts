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

export interface DecodedRecord extends RecordFields {
  /** Bytes the record occupies (header, key, value, CRC). */
  size: number;
}

export function recordSize(keyLength: number, valueLength: number): number {
  return RECORD_OVERHEAD + keyLength + valueLength;
}

/** Writes a record at out[at..]; returns its size. */
export function encodeRecord(out: Uint8Array, at: number, r: RecordFields): number {
  const v = new DataView(out.buffer, out.byteOffset + at);
  v.setUint8(0, r.kind);
  v.setUint8(1, r.valueType);
  v.setUint16(2, r.flags, true);
  v.setUint32(4, r.storeId, true);
  v.setBigUint64(8, BigInt(r.seq), true);
  v.setUint32(16, r.key.length, true);
  v.setUint32(20, r.value.length, true);
  out.set(r.key, at + RECORD_HEADER);
  out.set(r.value, at + RECORD_HEADER + r.key.length);
  const end = at + RECORD_HEADER + r.key.length + r.value.length;
  v.setUint32(end - at, crc32c(out, at, end), true);
  return end + 4 - at;
}

/** Size of the record whose header starts at buf[at..], or -1 if the header is implausible. */
export function peekRecordSize(buf: Uint8Array, at: number): number {
  if (buf.length - at < RECORD_HEADER) return -1;
  const v = new DataView(buf.buffer, buf.byteOffset + at);
  const kind = v.getUint8(0);
  if (kind < KIND_PUT || kind > KIND_CREATE_STORE) return -1;
  return RECORD_OVERHEAD + v.getUint32(16, true) + v.getUint32(20, true);
}

/** Decodes and verifies the record at buf[at..]; throws CORRUPT naming `where` if it is bad. */
export function decodeRecord(buf: Uint8Array, at: number, where: string): DecodedRecord {
  const size = peekRecordSize(buf, at);
  if (size < 0 || at + size > buf.length) throw corruptRecord(where, 'its header is damaged');
  const v = new DataView(buf.buffer, buf.byteOffset + at);
  const keyLength = v.getUint32(16, true);
  const valueLength = v.getUint32(20, true);
  if (v.getUint32(size - 4, true) !== crc32c(buf, at, at + size - 4)) throw corruptRecord(where, 'its checksum does not match');
  const k = at + RECORD_HEADER;
  return {
    kind: v.getUint8(0),
    valueType: v.getUint8(1),
    flags: v.getUint16(2, true),
    storeId: v.getUint32(4, true),
    seq: Number(v.getBigUint64(8, true)),
    key: buf.subarray(k, k + keyLength),
    value: buf.subarray(k + keyLength, k + keyLength + valueLength),
    size,
  };
}

function corruptRecord(where: string, why: string): ForestError {
  return new ForestError('CORRUPT', `the record at ${where} is corrupt: ${why}`);
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
