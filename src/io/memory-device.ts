import { ForestError } from '../errors.js';
import { JsDevice, jsGeometry } from './js-device.js';
import type { Geometry } from './types.js';

export interface MemoryDeviceOptions {
  blockSize?: number;
  maxTransfer?: number;
  queueDepth?: number;
  readOnly?: boolean;
}

/** A device in a byte array: for tests, and the base of FaultyDevice's crash images. */
export class MemoryDevice extends JsDevice {
  readonly backend = 'memory' as const;
  readonly path: string;
  readonly geometry: Geometry;
  /** The device's bytes (what a reboot would find: memory has no volatile cache). */
  readonly image: Uint8Array;

  constructor(capacityOrImage: number | Uint8Array, opts: MemoryDeviceOptions = {}, path = 'memory:') {
    super();
    if (typeof capacityOrImage === 'number') {
      if (!Number.isSafeInteger(capacityOrImage) || capacityOrImage <= 0) {
        throw new ForestError('INVALID_ARGUMENT', `memory device size must be positive, got ${capacityOrImage}`);
      }
      this.image = new Uint8Array(capacityOrImage);
    } else {
      this.image = capacityOrImage;
    }
    this.path = path;
    this.geometry = jsGeometry({ ...opts, capacity: this.image.length, volatileCache: false });
  }

  protected doRead(offset: number, bytes: Uint8Array): void {
    bytes.set(this.image.subarray(offset, offset + bytes.length));
  }

  protected doReadSync(offset: number, bytes: Uint8Array): void {
    this.doRead(offset, bytes);
  }

  protected doWrite(offset: number, bytes: Uint8Array): void {
    this.image.set(bytes, offset);
  }

  protected doFlush(): void {}

  protected doTrim(offset: number, length: number): void {
    this.image.fill(0, offset, offset + length);
  }

  protected doClose(): void {}
}
