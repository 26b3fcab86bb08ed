import { ForestError } from '../errors.js';
import { describeCommand } from './io-error.js';
import type { Geometry, IoCommand } from './types.js';

/**
 * Refuses a batch before anything reaches the device: unaligned offsets, lengths or
 * buffers, ranges beyond the capacity, writes on a read-only device, oversized commands.
 * Every backend calls it, so they all refuse the same things with the same words.
 */
export function validateCommands(
  geo: Geometry,
  path: string,
  cmds: readonly IoCommand[],
  needNativeMemory: boolean,
): void {
  const bs = geo.blockSize;
  let bsBig: bigint | undefined;
  for (let i = 0; i < cmds.length; i++) {
    const cmd = cmds[i]!;
    if (cmd.op === 'flush') continue;
    const length = cmd.op === 'trim' ? cmd.length : cmd.buffer.length;
    if (!Number.isSafeInteger(cmd.offset) || cmd.offset < 0) {
      throw new ForestError('INVALID_ARGUMENT', `${what(path, i, cmd)}: offset must be a non-negative integer`);
    }
    if (cmd.offset % bs !== 0) {
      throw new ForestError('UNALIGNED', `${what(path, i, cmd)}: offset is not a multiple of the ${bs}-byte block size`);
    }
    if (length === 0 || length % bs !== 0) {
      throw new ForestError('UNALIGNED', `${what(path, i, cmd)}: length is not a positive multiple of the ${bs}-byte block size`);
    }
    if (cmd.offset + length > geo.capacity) {
      throw new ForestError('OUT_OF_RANGE', `${what(path, i, cmd)}: goes beyond the capacity of ${geo.capacity} bytes`);
    }
    if (cmd.op === 'trim') continue;
    if (cmd.op === 'write' && geo.readOnly) {
      throw new ForestError('READ_ONLY', `${what(path, i, cmd)}: the device is open read-only`);
    }
    if (length > geo.maxTransfer) {
      throw new ForestError('INVALID_ARGUMENT', `${what(path, i, cmd)}: exceeds the maximum transfer of ${geo.maxTransfer} bytes`);
    }
    if (needNativeMemory) {
      if (cmd.buffer.address === 0n) {
        throw new ForestError('INVALID_ARGUMENT', `${what(path, i, cmd)}: the buffer is not native memory from allocBuffer()`);
      }
      if (cmd.buffer.address % (bsBig ??= BigInt(bs)) !== 0n) {
        throw new ForestError('UNALIGNED', `${what(path, i, cmd)}: the buffer is not aligned to ${bs} bytes`);
      }
    }
  }
}

/** The start of a refusal's message; built only when a command is refused. */
function what(path: string, i: number, cmd: IoCommand): string {
  return `${path}: command ${i} (${describeCommand(cmd)})`;
}
