import { ForestError } from '../errors.js';
import { addressOf, type BufferPool } from './buffer-pool.js';
import { DeviceBuffer, type BlockDevice, type IoCommand } from './types.js';

/** A block-aligned piece of data to write at a byte offset. */
export interface DirtyBlock {
  offset: number;
  data: Uint8Array;
  /** Written with FUA (durable when its command completes); coalesced only with other FUA blocks. */
  fua?: boolean;
}

export interface WriteBatchOptions {
  /** Follow the writes with one flush that starts after they all completed. */
  flush?: boolean;
}

/**
 * Writes many dirty blocks as few commands as possible: sorts them, coalesces adjacent
 * ones into commands no larger than the maximum transfer, copies each run into one
 * aligned pooled buffer, submits everything (and the flush, as a barrier) in one batch,
 * and resolves when all completed. Overlapping blocks in one batch are refused.
 */
export async function writeBlocks(
  device: BlockDevice,
  pool: BufferPool,
  blocks: readonly DirtyBlock[],
  opts: WriteBatchOptions = {},
): Promise<void> {
  const { blockSize, maxTransfer } = device.geometry;
  const sorted = blocks.length > 1 ? [...blocks].sort((a, b) => a.offset - b.offset) : blocks;
  const runs: DirtyBlock[][] = [];
  let run: DirtyBlock[] = [];
  let runStart = 0;
  let runEnd = 0;
  for (const b of sorted) {
    if (b.offset % blockSize !== 0 || b.data.length === 0 || b.data.length % blockSize !== 0) {
      throw new ForestError('UNALIGNED', `${device.path}: dirty block at offset ${b.offset} of ${b.data.length} bytes is not block-aligned (${blockSize})`);
    }
    if (run.length > 0 && b.offset < runEnd) {
      throw new ForestError('INVALID_ARGUMENT', `${device.path}: dirty blocks overlap at offset ${b.offset}`);
    }
    if (run.length > 0 && b.offset === runEnd && runEnd + b.data.length - runStart <= maxTransfer && (b.fua === true) === (run[0]!.fua === true)) {
      run.push(b);
      runEnd += b.data.length;
      continue;
    }
    if (run.length > 0) runs.push(run);
    run = [b];
    runStart = b.offset;
    runEnd = b.offset + b.data.length;
  }
  if (run.length > 0) runs.push(run);

  const buffers: DeviceBuffer[] = [];
  const commands: IoCommand[] = [];
  try {
    for (const r of runs) {
      if (r.length === 1 && direct(device, r[0]!, maxTransfer, commands)) continue;
      let length = 0;
      for (const b of r) length += b.data.length;
      if (length > maxTransfer) {
        // One block larger than the maximum transfer: split it.
        for (const b of r) splitLarge(b, maxTransfer, pool, buffers, commands);
        continue;
      }
      const buf = pool.acquire(length);
      buffers.push(buf);
      let at = 0;
      for (const b of r) {
        buf.bytes.set(b.data, at);
        at += b.data.length;
      }
      commands.push(writeCommand(r[0]!.offset, buf.subarray(0, length), r[0]!.fua));
    }
    if (opts.flush) commands.push({ op: 'flush', barrier: true });
    await device.submit(commands);
  } finally {
    for (const b of buffers) pool.release(b);
  }
}

/**
 * Data whose address is block-aligned (a commit frame: see allocAligned) is handed to the
 * device as it is, split at the maximum transfer, instead of being copied into pooled buffers
 * first. It stays referenced (by the command) until the command completes, and the caller does
 * not change it before writeBlocks resolves.
 */
function direct(device: BlockDevice, b: DirtyBlock, maxTransfer: number, commands: IoCommand[]): boolean {
  const data = b.data;
  const addr = addressOf(data);
  if (addr === null || addr % BigInt(device.geometry.blockSize) !== 0n) return false;
  const whole = new DeviceBuffer(data, addr);
  for (let at = 0; at < data.length; at += maxTransfer) {
    commands.push(writeCommand(b.offset + at, whole.subarray(at, Math.min(at + maxTransfer, data.length)), b.fua));
  }
  return true;
}

function splitLarge(b: DirtyBlock, maxTransfer: number, pool: BufferPool, buffers: DeviceBuffer[], commands: IoCommand[]): void {
  for (let at = 0; at < b.data.length; at += maxTransfer) {
    const piece = b.data.subarray(at, Math.min(at + maxTransfer, b.data.length));
    const buf = pool.acquire(piece.length);
    buffers.push(buf);
    buf.bytes.set(piece);
    commands.push(writeCommand(b.offset + at, buf.subarray(0, piece.length), b.fua));
  }
}

function writeCommand(offset: number, buffer: DeviceBuffer, fua: boolean | undefined): IoCommand {
  return fua ? { op: 'write', offset, buffer, fua: true } : { op: 'write', offset, buffer };
}
