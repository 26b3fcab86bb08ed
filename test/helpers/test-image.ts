import type { ImplementationFn, TestFn } from 'ava';
import { testDeviceFromEnv } from './device-suite.js';
import { MemoryDevice, openDevice, type BlockDevice } from './io.js';
import { WindowDevice } from './window-device.js';

/**
 * Where the engine tests keep their databases. By default a byte array (MemoryDevice), as
 * always; with FORESTFS_TEST_DEVICE / FORESTFS_TEST_BACKEND set (the QEMU NVMe harness sets
 * them per backend, see testDeviceFromEnv) a window of that real device opened with that
 * backend, so the same tests exercise the backend. Overwrites the device's contents.
 */
const target = testDeviceFromEnv();

/** true when test images live on a real device (FORESTFS_TEST_DEVICE is set). */
export const onTestDevice = target !== null;

/** Where test images live, for logs: 'memory' or 'backend:/dev/x'. */
export const testImageHome = target ? `${target.backend}:${target.device}` : 'memory';

/**
 * FORESTFS_TEST_SCALE (default 1): the fraction of their operations the long randomized
 * engine tests run. The QEMU guest (TCG, 10-30x slower) sets it below 1; `npm test` leaves
 * it unset and runs the full counts.
 */
export const TEST_SCALE = parseScale(process.env.FORESTFS_TEST_SCALE);

function parseScale(s: string | undefined): number {
  if (s === undefined || s === '') return 1;
  const x = Number(s);
  if (!(x > 0 && x <= 1)) throw new Error(`FORESTFS_TEST_SCALE must be a number in (0, 1], got '${s}'`);
  return x;
}

/** n scaled by TEST_SCALE, at least `min`; exactly n at scale 1. */
export function scaled(n: number, min = 1): number {
  return TEST_SCALE === 1 ? n : Math.max(min, Math.round(n * TEST_SCALE));
}

export interface TestImageOpenOptions {
  /** Lower the device's maximum transfer (to force split reads and writes). */
  maxTransfer?: number;
  readOnly?: boolean;
}

/** A database image that keeps its contents across open()s, as a disk does across reopens. */
export interface TestImage {
  readonly bytes: number;
  /** A fresh device over the image's current contents; db.close() closes it. */
  open(opts?: TestImageOpenOptions): Promise<BlockDevice>;
}

/** FORESTFS_TEST_QUEUE_DEPTH: the real device's queue depth (default 64, as openDevice). */
const queueDepth = Number(process.env.FORESTFS_TEST_QUEUE_DEPTH) || 64;
const WINDOW_ALIGN = 1 << 20;
/** Next free window on the real device; each image of this process gets its own. */
let nextBase = 0;

/** A blank image of `bytes` bytes: in memory, or a window of the test device (see above). */
export function testImage(bytes: number): TestImage {
  if (!target) {
    const image = new Uint8Array(bytes);
    return {
      bytes,
      open: async (opts = {}) => new MemoryDevice(image, {
        ...(opts.maxTransfer !== undefined && { maxTransfer: opts.maxTransfer }),
        ...(opts.readOnly !== undefined && { readOnly: opts.readOnly }),
      }),
    };
  }
  const { device, backend } = target;
  let base = -1;
  const openRaw = (readOnly: boolean): BlockDevice =>
    // No lock: tests of one file may hold several windows of the device at once.
    openDevice(device, { backend, queueDepth, noLock: true, readOnly });
  return {
    bytes,
    open: async (opts = {}) => {
      if (base < 0) {
        const raw = openRaw(false);
        const cap = raw.geometry.capacity;
        if (bytes > cap) throw new Error(`a ${bytes}-byte test image does not fit on ${device} (${cap} bytes)`);
        // Windows follow each other; when the device is used up, start again at 0 (the
        // images of that far back belong to tests that have finished: ava runs them -s).
        if (nextBase + bytes > cap) nextBase = 0;
        base = nextBase;
        nextBase = Math.ceil((base + bytes) / WINDOW_ALIGN) * WINDOW_ALIGN;
        // Blank the superblocks (an earlier test left data here): the engine formats a
        // blank device. Older frames further on carry another store UUID and are ignored.
        const win = new WindowDevice(raw, base, bytes);
        const zero = win.allocBuffer(Math.min(bytes, 16 * win.geometry.blockSize));
        zero.bytes.fill(0);
        await win.submit([{ op: 'write', offset: 0, buffer: zero }, { op: 'flush', barrier: true }]);
        win.freeBuffer(zero);
        if (!opts.readOnly) return new WindowDevice(raw, base, bytes, opts);
        await raw.close();
      }
      const raw = openRaw(opts.readOnly ?? false);
      return new WindowDevice(raw, base, bytes, opts);
    },
  };
}

/**
 * `test` for a test that stays in memory (it simulates crashes with FaultyDevice, flips bits
 * in a raw image, or uses host files): skipped when the test images are on a real device.
 */
export function memoryOnly(test: TestFn): (title: string, impl: ImplementationFn<[]>) => void {
  return (title, impl) => (onTestDevice ? test.skip(title, impl) : test(title, impl));
}
