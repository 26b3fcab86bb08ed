import { ForestError } from '../errors.js';
import { IoError } from './io-error.js';
import { DeviceBuffer, type BackendName, type BlockDevice, type Geometry, type IoCommand } from './types.js';
import { validateCommands } from './validate.js';

/**
 * Shared by the devices written in JavaScript (memory, node-fs, faulty): validation,
 * barriers, batch completion with the first error, and closing only once idle. A subclass
 * supplies the four primitive operations.
 */
export abstract class JsDevice implements BlockDevice {
  abstract readonly backend: BackendName;
  abstract readonly path: string;
  abstract readonly geometry: Geometry;
  private pending = 0;
  private closed = false;
  private idle: (() => void)[] = [];

  protected abstract doRead(offset: number, bytes: Uint8Array): Promise<void> | void;
  protected abstract doReadSync(offset: number, bytes: Uint8Array): void;
  protected abstract doWrite(offset: number, bytes: Uint8Array, fua: boolean): Promise<void> | void;
  protected abstract doFlush(): Promise<void> | void;
  protected abstract doTrim(offset: number, length: number): Promise<void> | void;
  protected abstract doClose(): Promise<void> | void;

  get outstanding(): number {
    return this.pending;
  }

  allocBuffer(size: number): DeviceBuffer {
    this.checkOpen();
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new ForestError('INVALID_ARGUMENT', `buffer size must be a positive integer, got ${size}`);
    }
    return new DeviceBuffer(new Uint8Array(size), 0n);
  }

  freeBuffer(_buffer: DeviceBuffer): void {}

  async submit(commands: readonly IoCommand[]): Promise<void> {
    this.checkOpen();
    validateCommands(this.geometry, this.path, commands, false);
    this.pending += commands.length;
    let firstError: Error | null = null;
    let running: Promise<void>[] = [];
    const settle = async (cmd: IoCommand): Promise<void> => {
      try {
        await this.run(cmd);
      } catch (e) {
        firstError ??= e instanceof ForestError ? e : this.toIoError(cmd, e);
      } finally {
        this.pending--;
      }
    };
    for (const cmd of commands) {
      if (cmd.op === 'flush' && cmd.barrier) {
        await Promise.all(running);
        running = [];
      }
      running.push(settle(cmd));
    }
    await Promise.all(running);
    if (this.pending === 0) for (const wake of this.idle.splice(0)) wake();
    if (firstError) throw firstError;
  }

  readSync(offset: number, buffer: DeviceBuffer): void {
    this.checkOpen();
    const cmd: IoCommand = { op: 'read', offset, buffer };
    validateCommands(this.geometry, this.path, [cmd], false);
    try {
      this.doReadSync(offset, buffer.bytes);
    } catch (e) {
      throw e instanceof ForestError ? e : this.toIoError(cmd, e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.pending > 0) await new Promise<void>((r) => this.idle.push(r));
    this.closed = true;
    await this.doClose();
  }

  protected checkOpen(): void {
    if (this.closed) throw new ForestError('CLOSED', `${this.path}: the device is closed`);
  }

  private run(cmd: IoCommand): Promise<void> | void {
    switch (cmd.op) {
      case 'read': return this.doRead(cmd.offset, cmd.buffer.bytes);
      case 'write': return this.doWrite(cmd.offset, cmd.buffer.bytes, cmd.fua ?? false);
      case 'flush': return this.doFlush();
      case 'trim':
        if (!this.geometry.trim) throw new IoError(this.path, cmd, 95 /* EOPNOTSUPP */);
        return this.doTrim(cmd.offset, cmd.length);
    }
  }

  private toIoError(cmd: IoCommand, e: unknown): IoError {
    const errno = (e as NodeJS.ErrnoException).errno;
    return new IoError(this.path, cmd, typeof errno === 'number' ? Math.abs(errno) : 5 /* EIO */);
  }
}

export interface JsGeometryOptions {
  capacity: number;
  blockSize?: number;
  maxTransfer?: number;
  queueDepth?: number;
  volatileCache?: boolean | null;
  created?: boolean;
  readOnly?: boolean;
  trim?: boolean;
  blockDevice?: boolean;
  direct?: boolean;
}

export function jsGeometry(o: JsGeometryOptions): Geometry {
  const blockSize = o.blockSize ?? 4096;
  return Object.freeze({
    blockSize,
    capacity: o.capacity - (o.capacity % blockSize),
    maxTransfer: o.maxTransfer ?? 1 << 20,
    queueDepth: o.queueDepth ?? 64,
    volatileCache: o.volatileCache ?? null,
    atomicWrite: 0,
    dioAlign: 1,
    blockDevice: o.blockDevice ?? false,
    direct: o.direct ?? false,
    trim: o.trim ?? true,
    created: o.created ?? false,
    readOnly: o.readOnly ?? false,
  });
}
