import { describeOperation, IoError } from './io-error.js';
import { JsDevice, jsGeometry } from './js-device.js';
import { Prng } from './prng.js';
import type { Geometry, IoCommand } from './types.js';

/** The unit a torn write is cut at: a sector of the oldest devices. */
export const SECTOR = 512;

export interface UnflushedWrite {
  /** The operation number of the write (see FaultyDevice.operations). */
  readonly op: number;
  readonly offset: number;
  readonly data: Uint8Array;
}

export type KeepPolicy =
  | 'none'
  | 'all'
  | 'random'
  /** Positions in unflushedWrites() of the writes that reach the media. */
  | readonly number[]
  | ((w: UnflushedWrite, position: number) => boolean);

export type TearPolicy =
  | 'none'
  /** Each 512-byte sector of a kept write reaches the media or not, independently. */
  | 'random'
  /** A kept write reaches the media up to a random sector boundary. */
  | 'prefix';

export interface CrashOptions {
  keep?: KeepPolicy;
  tear?: TearPolicy;
  /** Overrides the device's seed for this crash's random choices. */
  seed?: number;
}

export interface FaultRule {
  op?: IoCommand['op'];
  /** Fail only the operation with this number. */
  at?: number;
  /** Fail operations touching this byte offset. */
  offset?: number;
  /** The errno name reported, default 'EIO'. */
  errno?: 'EIO' | 'ENOSPC' | 'EROFS';
  /** Fire once (default) or every time it matches. */
  once?: boolean;
}

const ERRNO_VALUES = { EIO: 5, ENOSPC: 28, EROFS: 30 } as const;

/**
 * A memory device that models a volatile write cache, for crash tests. Writes are visible
 * to reads at once but become durable only at a flush; `crash()` produces the image a
 * reboot could find: everything flushed, plus any chosen subset of the unflushed writes,
 * each possibly torn at 512-byte granularity. Operations can fail with an errno, and the
 * power can fail at a chosen operation. Every random choice comes from the seed.
 */
export class FaultyDevice extends JsDevice {
  readonly backend = 'faulty' as const;
  readonly path: string;
  readonly geometry: Geometry;
  /** What reads see. */
  private readonly visible: Uint8Array;
  /** What is certain to survive a crash. */
  private readonly durable: Uint8Array;
  private unflushed: UnflushedWrite[] = [];
  private readonly rules: FaultRule[] = [];
  private readonly prng: Prng;
  private opCounter = 0;
  private powerFailOp = Infinity;

  constructor(image: Uint8Array | number, opts: { seed?: number; blockSize?: number; maxTransfer?: number; path?: string } = {}) {
    super();
    this.durable = typeof image === 'number' ? new Uint8Array(image) : image.slice();
    this.visible = this.durable.slice();
    this.prng = new Prng(opts.seed ?? 1);
    this.path = opts.path ?? 'faulty:';
    this.geometry = jsGeometry({
      capacity: this.durable.length,
      volatileCache: true,
      ...(opts.blockSize !== undefined && { blockSize: opts.blockSize }),
      ...(opts.maxTransfer !== undefined && { maxTransfer: opts.maxTransfer }),
    });
  }

  /** Operations started so far (each command counts one, reads included). */
  get operations(): number {
    return this.opCounter;
  }

  /** Writes since the last flush, oldest first. */
  unflushedWrites(): readonly UnflushedWrite[] {
    return this.unflushed;
  }

  /** Makes matching operations fail with an errno (the device state is unchanged by them). */
  failOn(rule: FaultRule): void {
    this.rules.push({ once: true, ...rule });
  }

  /** From operation number `op` on, nothing reaches the device and every operation fails. */
  powerFailAt(op: number): void {
    this.powerFailOp = op;
  }

  get powerFailed(): boolean {
    return this.opCounter > this.powerFailOp;
  }

  /** The image a reboot would find now. The device itself stays as it is. */
  crash(opts: CrashOptions = {}): Uint8Array {
    const prng = opts.seed === undefined ? this.prng : new Prng(opts.seed);
    const keep = opts.keep ?? 'random';
    const tear = opts.tear ?? 'none';
    const image = this.durable.slice();
    this.unflushed.forEach((w, i) => {
      const kept = keep === 'all' ? true
        : keep === 'none' ? false
          : keep === 'random' ? prng.bool()
            : typeof keep === 'function' ? keep(w, i) : keep.includes(i);
      if (!kept) return;
      const sectors = Math.ceil(w.data.length / SECTOR);
      if (tear === 'none') {
        image.set(w.data, w.offset);
      } else if (tear === 'prefix') {
        const n = prng.int(sectors + 1);
        image.set(w.data.subarray(0, n * SECTOR), w.offset);
      } else {
        for (let s = 0; s < sectors; s++) {
          if (prng.bool()) image.set(w.data.subarray(s * SECTOR, (s + 1) * SECTOR), w.offset + s * SECTOR);
        }
      }
    });
    return image;
  }

  private begin(op: IoCommand['op'], offset: number, length: number): void {
    const n = this.opCounter++;
    if (n >= this.powerFailOp) throw this.fault(op, offset, length, 5, 'the power failed');
    for (let i = 0; i < this.rules.length; i++) {
      const r = this.rules[i]!;
      if (r.op !== undefined && r.op !== op) continue;
      if (r.at !== undefined && r.at !== n) continue;
      if (r.offset !== undefined && (r.offset < offset || r.offset >= offset + length || op === 'flush')) continue;
      if (r.once) this.rules.splice(i, 1);
      throw this.fault(op, offset, length, ERRNO_VALUES[r.errno ?? 'EIO']);
    }
  }

  private fault(op: IoCommand['op'], offset: number, length: number, errno: number, why?: string): IoError {
    const e = new IoError(this.path, describeOperation(op, offset, length), errno);
    if (why) e.message += ` (${why})`;
    return e;
  }

  protected doRead(offset: number, bytes: Uint8Array): void {
    this.begin('read', offset, bytes.length);
    bytes.set(this.visible.subarray(offset, offset + bytes.length));
  }

  protected doReadSync(offset: number, bytes: Uint8Array): void {
    this.doRead(offset, bytes);
  }

  protected doWrite(offset: number, bytes: Uint8Array, fua: boolean): void {
    this.begin('write', offset, bytes.length);
    this.visible.set(bytes, offset);
    if (fua) {
      this.durable.set(bytes, offset);
      this.supersede(offset, offset + bytes.length);
    } else {
      this.unflushed.push({ op: this.opCounter - 1, offset, data: bytes.slice() });
    }
  }

  /**
   * A FUA write is on stable media when it completes, with the newest data for its range: an
   * earlier write to that range still in the volatile cache can no longer reach the media
   * there (a cache holds the latest data per block). So the parts of earlier unflushed writes
   * inside [start, end) are dropped; a crash must not replay them over the FUA data.
   */
  private supersede(start: number, end: number): void {
    const kept: UnflushedWrite[] = [];
    for (const w of this.unflushed) {
      const wEnd = w.offset + w.data.length;
      if (wEnd <= start || w.offset >= end) {
        kept.push(w);
        continue;
      }
      if (w.offset < start) kept.push({ op: w.op, offset: w.offset, data: w.data.subarray(0, start - w.offset) });
      if (wEnd > end) kept.push({ op: w.op, offset: end, data: w.data.subarray(end - w.offset) });
    }
    this.unflushed = kept;
  }

  protected doFlush(): void {
    this.begin('flush', 0, 0);
    for (const w of this.unflushed) this.durable.set(w.data, w.offset);
    this.unflushed = [];
  }

  protected doTrim(offset: number, length: number): void {
    this.begin('trim', offset, length);
    // Trimmed blocks read back as zeroes at once; durably so only after a flush.
    const zeroes = new Uint8Array(length);
    this.visible.set(zeroes, offset);
    this.unflushed.push({ op: this.opCounter - 1, offset, data: zeroes });
  }

  protected doClose(): void {}
}
