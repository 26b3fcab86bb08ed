/**
 * The bytes on the device (docs/FORMAT.md describes each structure byte by byte).
 *
 *   block 0, block 1     superblocks, written alternately (highest valid generation wins)
 *   block 2 …            the log: commit frames, one after another, block-aligned
 *
 * A commit frame is one contiguous, block-aligned run: a 128-byte header, then records,
 * then (in a checkpoint) index node blocks and the checkpoint meta. The header checksums
 * the whole frame, so a frame written in one batch plus one flush is durable, and a torn
 * frame is simply not found by recovery.
 */
import { ForestError } from '../errors.js';
import { crc32c } from './checksum.js';

const TWO32 = 4294967296;

/**
 * A u64 field as two u32 halves: every value the format stores is a safe integer, and
 * BigInt conversions cost an allocation each (seven per commit header).
 */
export function setU64(v: DataView, at: number, n: number): void {
  v.setUint32(at, n >>> 0, true);
  v.setUint32(at + 4, Math.floor(n / TWO32), true);
}

/** A u64 field as a number; exact up to 2^53 (larger values only come from corrupt bytes). */
export function getU64(v: DataView, at: number): number {
  return v.getUint32(at + 4, true) * TWO32 + v.getUint32(at, true);
}

export const FORMAT_VERSION = 2;
export const SUPERBLOCK_MAGIC = 'FORESTFS';
export const FRAME_MAGIC = 0x4d524646; // 'FFRM' little-endian
export const FRAME_HEADER_SIZE = 128;
export const FRAME_CHECKPOINT = 1;
/** A compaction's copies of live records; only the compaction's checkpoint refers to them. */
export const FRAME_COPY = 2;
/** Superblocks occupy blocks 0 and 1; the log starts at block 2. */
export const SUPERBLOCKS = 2;

export interface Superblock {
  version: number;
  blockSize: number;
  generation: number;
  capacity: number;
  logStart: number;
  segmentSize: number;
  /** Frame offset of a checkpoint frame recovery starts from. */
  checkpointOffset: number;
  checkpointCommit: number;
  uuid: Uint8Array;
  chunkSize: number;
}

export function encodeSuperblock(sb: Superblock, blockSize: number): Uint8Array {
  const b = new Uint8Array(blockSize);
  const v = new DataView(b.buffer);
  b.set(Buffer.from(SUPERBLOCK_MAGIC, 'latin1'), 0);
  v.setUint32(8, sb.version, true);
  v.setUint32(12, sb.blockSize, true);
  setU64(v, 16, sb.generation);
  setU64(v, 24, sb.capacity);
  setU64(v, 32, sb.logStart);
  setU64(v, 40, sb.segmentSize);
  setU64(v, 48, sb.checkpointOffset);
  setU64(v, 56, sb.checkpointCommit);
  b.set(sb.uuid, 64);
  v.setUint32(80, sb.chunkSize, true);
  v.setUint32(blockSize - 4, crc32c(b, 0, blockSize - 4), true);
  return b;
}

/** 'blank' for an all-zero block, null for anything else that is not a valid superblock. */
export function decodeSuperblock(b: Uint8Array): Superblock | 'blank' | null {
  if (b.every((x) => x === 0)) return 'blank';
  if (Buffer.from(b.subarray(0, 8)).toString('latin1') !== SUPERBLOCK_MAGIC) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const blockSize = v.getUint32(12, true);
  if (blockSize !== b.length) return null;
  if (v.getUint32(blockSize - 4, true) !== crc32c(b, 0, blockSize - 4)) return null;
  return {
    version: v.getUint32(8, true),
    blockSize,
    generation: getU64(v, 16),
    capacity: getU64(v, 24),
    logStart: getU64(v, 32),
    segmentSize: getU64(v, 40),
    checkpointOffset: getU64(v, 48),
    checkpointCommit: getU64(v, 56),
    uuid: b.slice(64, 80),
    chunkSize: v.getUint32(80, true),
  };
}

export interface FrameHeader {
  flags: number;
  commit: number;
  /** Bytes, a multiple of the block size. */
  length: number;
  prevOffset: number;
  /** Where the log continues after this frame. */
  nextOffset: number;
  lastSeq: number;
  /** The newest checkpoint frame (this frame's own offset when it is one). */
  checkpointOffset: number;
  recordCount: number;
  /** Offset in the frame where the records end (they start at FRAME_HEADER_SIZE). */
  recordsEnd: number;
  metaOffset: number;
  metaLength: number;
  uuid: Uint8Array;
  timestamp: number;
}

/** A sealed frame's recordsEnd, read from its header without decoding or checking it (the frame is our own). */
export function sealedRecordsEnd(frame: Uint8Array): number {
  return new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_SIZE).getUint32(60, true);
}

/** Writes the header into frame[0..128) and the checksums over the whole frame. */
export function sealFrame(frame: Uint8Array, h: FrameHeader): void {
  const v = new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_SIZE);
  v.setUint32(0, FRAME_MAGIC, true);
  v.setUint16(4, FORMAT_VERSION, true);
  v.setUint16(6, h.flags, true);
  setU64(v, 8, h.commit);
  setU64(v, 16, h.length);
  setU64(v, 24, h.prevOffset);
  setU64(v, 32, h.nextOffset);
  setU64(v, 40, h.lastSeq);
  setU64(v, 48, h.checkpointOffset);
  v.setUint32(56, h.recordCount, true);
  v.setUint32(60, h.recordsEnd, true);
  v.setUint32(64, h.metaOffset, true);
  v.setUint32(68, h.metaLength, true);
  frame.set(h.uuid, 72);
  setU64(v, 88, h.timestamp);
  frame.fill(0, 96, 120);
  v.setUint32(120, crc32c(frame, FRAME_HEADER_SIZE, h.length), true);
  v.setUint32(124, crc32c(frame, 0, 124), true);
}

/**
 * Decodes the header in the first block of a frame; null unless its magic, checksum and
 * store identity are right. The body checksum is checked separately (verifyFrameBody).
 */
export function decodeFrameHeader(first: Uint8Array, uuid: Uint8Array, blockSize: number): FrameHeader | null {
  const v = new DataView(first.buffer, first.byteOffset, FRAME_HEADER_SIZE);
  if (v.getUint32(0, true) !== FRAME_MAGIC) return null;
  if (v.getUint32(124, true) !== crc32c(first, 0, 124)) return null;
  if (!uuid.every((x, i) => first[72 + i] === x)) return null;
  const h: FrameHeader = {
    flags: v.getUint16(6, true),
    commit: getU64(v, 8),
    length: getU64(v, 16),
    prevOffset: getU64(v, 24),
    nextOffset: getU64(v, 32),
    lastSeq: getU64(v, 40),
    checkpointOffset: getU64(v, 48),
    recordCount: v.getUint32(56, true),
    recordsEnd: v.getUint32(60, true),
    metaOffset: v.getUint32(64, true),
    metaLength: v.getUint32(68, true),
    uuid: first.slice(72, 88),
    timestamp: getU64(v, 88),
  };
  if (h.length < blockSize || h.length % blockSize !== 0 || h.recordsEnd > h.length || h.metaOffset + h.metaLength > h.length) return null;
  return h;
}

export function verifyFrameBody(frame: Uint8Array, h: FrameHeader): boolean {
  const v = new DataView(frame.buffer, frame.byteOffset, FRAME_HEADER_SIZE);
  return v.getUint32(120, true) === crc32c(frame, FRAME_HEADER_SIZE, h.length);
}

export function notForestFs(path: string, why: string): ForestError {
  return new ForestError('NOT_FORESTFS', `${path} is not a ForestFS device or image: ${why}`);
}
