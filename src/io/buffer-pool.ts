import koffi from 'koffi';
import type { BlockDevice, DeviceBuffer } from './types.js';

/**
 * Reusable aligned buffers for a device, by size class (the block size times a power of
 * two). Allocating native memory costs a system call's worth of time; a commit needs a
 * few buffers, so they are kept and handed out again. Buffers larger than the device's
 * maximum transfer are allocated and freed directly.
 */
export class BufferPool {
  private readonly free = new Map<number, DeviceBuffer[]>();
  private readonly largest: number;
  private retainedBytes = 0;

  constructor(
    private readonly device: BlockDevice,
    /** At most this many bytes are kept for reuse; more are freed on release. */
    private readonly retainLimit = 64 << 20,
  ) {
    this.largest = device.geometry.maxTransfer;
  }

  /** A buffer of at least `size` bytes; `bytes` may be longer than asked: use subarray. */
  acquire(size: number): DeviceBuffer {
    const cls = this.sizeClass(size);
    if (cls > this.largest) return this.device.allocBuffer(size);
    const list = this.free.get(cls);
    const buf = list?.pop();
    if (buf) {
      this.retainedBytes -= cls;
      return buf;
    }
    return this.device.allocBuffer(cls);
  }

  release(buf: DeviceBuffer): void {
    const cls = buf.length;
    if (cls > this.largest || cls !== this.sizeClass(cls) || this.retainedBytes + cls > this.retainLimit) {
      this.device.freeBuffer(buf);
      return;
    }
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(buf);
    this.retainedBytes += cls;
  }

  /** Frees every retained buffer. */
  drain(): void {
    for (const list of this.free.values()) for (const b of list) this.device.freeBuffer(b);
    this.free.clear();
    this.retainedBytes = 0;
  }

  private sizeClass(size: number): number {
    let cls = this.device.geometry.blockSize;
    while (cls < size) cls *= 2;
    return cls;
  }
}

/**
 * Zeroed memory whose first byte is `align`-aligned in the address space, owned by the
 * JavaScript heap (freed by the garbage collector): what a commit frame is built in, so that
 * writeBlocks can hand it to the device without copying it into a pooled buffer. An
 * ArrayBuffer's backing store never moves. Where the address cannot be learned, the memory is
 * simply not aligned (writeBlocks then copies, as for any other data).
 */
export function allocAligned(size: number, align: number): Uint8Array {
  const ab = new ArrayBuffer(size + align);
  const addr = addressOf(new Uint8Array(ab, 0, 1));
  if (addr === null) return new Uint8Array(ab, 0, size);
  const skew = Number(addr % BigInt(align));
  return new Uint8Array(ab, skew === 0 ? 0 : align - skew, size);
}

/** The address of bytes[0], or null where koffi cannot tell. */
export function addressOf(bytes: Uint8Array): bigint | null {
  try {
    return koffi.address(bytes);
  } catch {
    return null;
  }
}
