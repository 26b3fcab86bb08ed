import { constants } from 'node:os';
import { ForestError } from '../errors.js';
import type { IoCommand } from './types.js';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

/** Name of a positive errno value, e.g. 5 → 'EIO'. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** Describes an operation for error messages: "write of 8192 bytes at offset 4096". */
export function describeOperation(op: IoCommand['op'], offset: number, length: number): string {
  return op === 'flush' ? 'flush' : `${op} of ${length} bytes at offset ${offset}`;
}

export function describeCommand(cmd: IoCommand): string {
  switch (cmd.op) {
    case 'flush': return describeOperation('flush', 0, 0);
    case 'trim': return describeOperation('trim', cmd.offset, cmd.length);
    default: return describeOperation(cmd.op, cmd.offset, cmd.buffer.length);
  }
}

/** A command the device failed: names the command, the errno and the device. */
export class IoError extends ForestError {
  readonly errno: string;
  readonly command: string;

  constructor(path: string, cmd: IoCommand | string, errno: number, status = 0) {
    const name = errnoName(errno);
    const what = typeof cmd === 'string' ? cmd : describeCommand(cmd);
    const detail = status ? `, device status 0x${status.toString(16)}` : '';
    super('IO', `${path}: ${what} failed: ${name}${detail}`);
    this.name = 'IoError';
    this.errno = name;
    this.command = what;
  }
}
