/**
 * The I/O layer's vocabulary: a block device that moves aligned blocks, and nothing about
 * keys or records. Offsets and lengths are bytes, always multiples of `blockSize`.
 */

export type BackendName = 'uring' | 'psync' | 'nvmed' | 'uring-cmd' | 'node-fs' | 'memory' | 'faulty';

export interface Geometry {
  /** The I/O unit and alignment for offsets, lengths and buffers, in bytes. */
  readonly blockSize: number;
  /** Usable bytes (a multiple of blockSize). */
  readonly capacity: number;
  /** The largest single command in bytes; the write batcher never exceeds it. */
  readonly maxTransfer: number;
  /** Commands in flight at most; more wait in software. */
  readonly queueDepth: number;
  /** true: a volatile write cache that flush empties; false: none; null: unknown. */
  readonly volatileCache: boolean | null;
  /** Power-fail atomic write unit in bytes, 0 when unknown. */
  readonly atomicWrite: number;
  /** The smallest alignment the kernel would accept (informational). */
  readonly dioAlign: number;
  readonly blockDevice: boolean;
  /** Bypasses the page cache (O_DIRECT). */
  readonly direct: boolean;
  readonly trim: boolean;
  /** This open created the image file. */
  readonly created: boolean;
  readonly readOnly: boolean;
}

/**
 * Memory a command may transfer into or out of. For native backends it is native memory
 * (`address` non-zero) that stays valid while a command is in flight; a JS-heap buffer is
 * never handed to an in-flight native operation.
 */
export class DeviceBuffer {
  constructor(
    readonly bytes: Uint8Array,
    /** Native address of bytes[0]; 0n for memory that is not native (JS backends). */
    readonly address: bigint,
  ) {}

  get length(): number {
    return this.bytes.length;
  }

  /** A view of part of this buffer, sharing its memory. */
  subarray(start: number, end = this.bytes.length): DeviceBuffer {
    return new DeviceBuffer(
      this.bytes.subarray(start, end),
      this.address === 0n ? 0n : this.address + BigInt(start),
    );
  }
}

export type IoCommand =
  | { op: 'read'; offset: number; buffer: DeviceBuffer }
  | { op: 'write'; offset: number; buffer: DeviceBuffer; fua?: boolean }
  /** With `barrier`, the flush starts only after every earlier command has completed. */
  | { op: 'flush'; barrier?: boolean }
  | { op: 'trim'; offset: number; length: number };

export interface BlockDevice {
  readonly backend: BackendName;
  readonly path: string;
  readonly geometry: Geometry;
  /** Aligned memory usable in commands; valid until freeBuffer() or close(). */
  allocBuffer(size: number): DeviceBuffer;
  freeBuffer(buffer: DeviceBuffer): void;
  /**
   * Submits a batch; resolves when every command has completed. If any failed, rejects
   * (after all have completed) with the first failure as an IoError naming the command.
   * Invalid commands are refused before anything is submitted.
   */
  submit(commands: readonly IoCommand[]): Promise<void>;
  /** Synchronous read (the engine's sync get on a cache miss). */
  readSync(offset: number, buffer: DeviceBuffer): void;
  /** Commands submitted and not yet completed. */
  readonly outstanding: number;
  /** Waits for outstanding commands, then releases the device and its buffers. */
  close(): Promise<void>;
}
