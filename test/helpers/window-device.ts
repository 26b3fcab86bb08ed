import { validateCommands } from '../../src/io/validate.js';
import type { BlockDevice, DeviceBuffer, Geometry, IoCommand } from './io.js';

/**
 * A window (a partition, in effect) of another device: bytes [base, base + capacity) of
 * `inner` appear as a device of `capacity` bytes starting at offset 0. Commands are checked
 * against the window (so nothing reaches the device outside it) and passed on with their
 * offsets moved by `base`; buffers, queue depth and everything else are the inner device's.
 * Closing the window closes the inner device. For tests that give each database its own
 * region of one real device (test/helpers/test-image.ts).
 */
export class WindowDevice implements BlockDevice {
  readonly backend: BlockDevice['backend'];
  readonly path: string;
  readonly geometry: Geometry;

  constructor(
    private readonly inner: BlockDevice,
    private readonly base: number,
    capacity: number,
    opts: { maxTransfer?: number } = {},
  ) {
    const g = inner.geometry;
    if (base % g.blockSize !== 0 || capacity % g.blockSize !== 0 || capacity <= 0) {
      throw new Error(`window ${base}+${capacity} is not aligned to the ${g.blockSize}-byte blocks of ${inner.path}`);
    }
    if (base + capacity > g.capacity) {
      throw new Error(`window ${base}+${capacity} goes beyond the ${g.capacity} bytes of ${inner.path}`);
    }
    this.backend = inner.backend;
    this.path = `${inner.path}@${base}`;
    // Listed field by field: a spread would lose fields a device exposes as getters.
    this.geometry = Object.freeze({
      blockSize: g.blockSize,
      capacity,
      // A test may ask for a smaller limit (to force split transfers), never a larger one.
      maxTransfer: Math.min(g.maxTransfer, opts.maxTransfer ?? g.maxTransfer),
      queueDepth: g.queueDepth,
      volatileCache: g.volatileCache,
      atomicWrite: g.atomicWrite,
      dioAlign: g.dioAlign,
      blockDevice: g.blockDevice,
      direct: g.direct,
      trim: g.trim,
      created: g.created,
      readOnly: g.readOnly,
    });
  }

  get outstanding(): number {
    return this.inner.outstanding;
  }

  allocBuffer(size: number): DeviceBuffer {
    return this.inner.allocBuffer(size);
  }

  freeBuffer(buffer: DeviceBuffer): void {
    this.inner.freeBuffer(buffer);
  }

  submit(commands: readonly IoCommand[]): Promise<void> {
    // The window's own capacity and transfer limit; the inner device checks its memory rules.
    try {
      validateCommands(this.geometry, this.path, commands, false);
    } catch (e) {
      return Promise.reject(e);
    }
    const base = this.base;
    return this.inner.submit(commands.map((c): IoCommand => (c.op === 'flush' ? c : { ...c, offset: c.offset + base })));
  }

  readSync(offset: number, buffer: DeviceBuffer): void {
    validateCommands(this.geometry, this.path, [{ op: 'read', offset, buffer }], false);
    this.inner.readSync(offset + this.base, buffer);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
