import { Socket } from 'node:net';
import { ForestError } from '../errors.js';
import { IoError } from './io-error.js';
import {
  CMD_SIZE, CQE_SIZE, GEO_BLOCKDEV, GEO_CREATED, GEO_DIRECT, GEO_READONLY, GEO_TRIM,
  GEOMETRY_SIZE, OPEN_CREATE, OPEN_NOLOCK, OPEN_READONLY, nativeLib, nativeUnavailableReason,
  type NativeLib,
} from './native-lib.js';
import { DeviceBuffer, type BackendName, type BlockDevice, type Geometry, type IoCommand } from './types.js';
import { validateCommands } from './validate.js';

export type NativeBackendName = 'uring' | 'psync' | 'nvmed' | 'uring-cmd';

export interface NativeOpenOptions {
  readOnly?: boolean;
  /** Create an image file of this many bytes when the path does not exist. */
  createSize?: number;
  queueDepth?: number;
  /** Skip the exclusive writer lock (readers in other processes). */
  noLock?: boolean;
}

const OPCODE = { read: 0, write: 1, flush: 2, trim: 3 } as const;
const FLAG_FUA = 1;
const FLAG_BARRIER = 2;
const REAP_MAX = 256;

/** One submitted batch: resolved once all of its commands completed. */
interface Batch {
  remaining: number;
  error: IoError | null;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface InFlight {
  batch: Batch;
  cmd: IoCommand;
}

/**
 * A device driven through the native library. Commands are packed into one byte array and
 * submitted in one synchronous FFI call; the event loop learns of completions through a
 * pipe the library writes to, and reaps them all in one more call. The cost per batch is
 * two FFI crossings plus one wakeup, never one crossing per block.
 */
export class NativeDevice implements BlockDevice {
  readonly backend: BackendName;
  readonly path: string;
  readonly geometry: Geometry;
  private readonly lib: NativeLib;
  private dev: bigint;
  private readonly notify: Socket;
  private readonly inflight = new Map<number, InFlight>();
  private readonly allocations = new Map<bigint, number>();
  private nextTag = 1;
  private cmdBuf = new Uint8Array(CMD_SIZE * 64);
  private cmdView = new DataView(this.cmdBuf.buffer);
  private readonly cqeBuf = new Uint8Array(CQE_SIZE * REAP_MAX);
  private readonly cqeView = new DataView(this.cqeBuf.buffer);
  private closed = false;
  private refd = false;

  private constructor(lib: NativeLib, dev: bigint, backend: NativeBackendName, path: string) {
    this.lib = lib;
    this.dev = dev;
    this.backend = backend;
    this.path = path;
    const g = new Uint8Array(GEOMETRY_SIZE);
    lib.geometry(dev, g);
    const v = new DataView(g.buffer);
    const flags = v.getUint32(32, true);
    const vwc = v.getInt32(24, true);
    this.geometry = Object.freeze({
      capacity: Number(v.getBigUint64(0, true)),
      blockSize: v.getUint32(8, true),
      dioAlign: v.getUint32(12, true),
      maxTransfer: v.getUint32(16, true),
      queueDepth: v.getUint32(20, true),
      volatileCache: vwc < 0 ? null : vwc === 1,
      atomicWrite: v.getUint32(28, true),
      blockDevice: (flags & GEO_BLOCKDEV) !== 0,
      direct: (flags & GEO_DIRECT) !== 0,
      trim: (flags & GEO_TRIM) !== 0,
      created: (flags & GEO_CREATED) !== 0,
      readOnly: (flags & GEO_READONLY) !== 0,
    });
    const fd = lib.notifyFd(dev);
    if (fd < 0) {
      lib.close(dev);
      throw new ForestError('IO', `${path}: cannot create the completion notifier`);
    }
    this.notify = new Socket({ fd, readable: true, writable: false });
    this.notify.on('data', () => this.reapAvailable());
    this.notify.on('error', () => {});
    this.notify.unref();
  }

  static open(backend: NativeBackendName, path: string, opts: NativeOpenOptions = {}): NativeDevice {
    const lib = nativeLib();
    if (!lib) throw new ForestError('BACKEND_UNAVAILABLE', `backend '${backend}' is unavailable: ${nativeUnavailableReason()}`);
    let flags = 0;
    if (opts.readOnly) flags |= OPEN_READONLY;
    if (opts.createSize !== undefined && !opts.readOnly) flags |= OPEN_CREATE;
    if (opts.noLock) flags |= OPEN_NOLOCK;
    const err = new Uint8Array(256);
    const dev = lib.open(backend, path, flags, BigInt(opts.createSize ?? 0), opts.queueDepth ?? 64, err, err.length);
    if (!dev) {
      const msg = Buffer.from(err).toString('utf8').replace(/\0[\s\S]*$/, '');
      const code = /locked by another writer|in use by another writer/.test(msg) ? 'LOCKED'
        : /no such file/i.test(msg) ? 'NOT_FOUND'
          : /not available/.test(msg) ? 'BACKEND_UNAVAILABLE' : 'IO';
      throw new ForestError(code, `cannot open ${path} with backend '${backend}': ${msg}`);
    }
    return new NativeDevice(lib, dev, backend, path);
  }

  static available(backend: NativeBackendName): boolean {
    const lib = nativeLib();
    return lib !== null && lib.backendAvailable(backend) === 1;
  }

  get outstanding(): number {
    return this.inflight.size;
  }

  allocBuffer(size: number): DeviceBuffer {
    this.checkOpen();
    if (!Number.isSafeInteger(size) || size <= 0) {
      throw new ForestError('INVALID_ARGUMENT', `buffer size must be a positive integer, got ${size}`);
    }
    const rounded = Math.ceil(size / this.geometry.blockSize) * this.geometry.blockSize;
    const p = this.lib.alloc(this.dev, BigInt(rounded));
    if (!p) throw new ForestError('IO', `${this.path}: cannot allocate ${rounded} bytes of aligned memory`);
    this.allocations.set(p, rounded);
    return new DeviceBuffer(new Uint8Array(this.lib.view(p, rounded), 0, size), p);
  }

  freeBuffer(buffer: DeviceBuffer): void {
    const size = this.allocations.get(buffer.address);
    if (size === undefined) throw new ForestError('INVALID_ARGUMENT', 'freeBuffer: not an allocation of this device');
    this.allocations.delete(buffer.address);
    this.lib.free(this.dev, buffer.address, BigInt(size));
  }

  submit(commands: readonly IoCommand[]): Promise<void> {
    if (commands.length === 0) return Promise.resolve();
    try {
      this.checkOpen();
      validateCommands(this.geometry, this.path, commands, true);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      const batch: Batch = { remaining: commands.length, error: null, resolve, reject };
      const firstTag = this.pack(commands, batch);
      const rc = this.lib.submit(this.dev, this.cmdBuf, commands.length);
      if (rc < 0) {
        for (let i = 0; i < commands.length; i++) this.inflight.delete(firstTag + i);
        reject(new ForestError('IO', `${this.path}: submit failed: ${this.lib.lastError(this.dev)}`));
        return;
      }
      if (!this.refd) {
        this.notify.ref();
        this.refd = true;
      }
    });
  }

  readSync(offset: number, buffer: DeviceBuffer): void {
    this.checkOpen();
    const cmd: IoCommand = { op: 'read', offset, buffer };
    validateCommands(this.geometry, this.path, [cmd], true);
    let done = false;
    let error: Error | null = null;
    const batch: Batch = {
      remaining: 1, error: null,
      resolve: () => { done = true; },
      reject: (e) => { done = true; error = e; },
    };
    this.pack([cmd], batch);
    if (this.lib.submit(this.dev, this.cmdBuf, 1) < 0) {
      throw new ForestError('IO', `${this.path}: submit failed: ${this.lib.lastError(this.dev)}`);
    }
    while (!done) this.reap(1);
    if (error) throw error;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.inflight.size > 0) {
      await new Promise<void>((r) => setImmediate(r));
      this.reapAvailable();
    }
    this.closed = true;
    this.notify.destroy();
    for (const [p, size] of this.allocations) this.lib.free(this.dev, p, BigInt(size));
    this.allocations.clear();
    this.lib.close(this.dev);
    this.dev = 0n;
  }

  private checkOpen(): void {
    if (this.closed) throw new ForestError('CLOSED', `${this.path}: the device is closed`);
  }

  /** Packs commands into the command array; returns the first tag. */
  private pack(commands: readonly IoCommand[], batch: Batch): number {
    const need = commands.length * CMD_SIZE;
    if (this.cmdBuf.length < need) {
      this.cmdBuf = new Uint8Array(Math.max(need, this.cmdBuf.length * 2));
      this.cmdView = new DataView(this.cmdBuf.buffer);
    }
    const v = this.cmdView;
    const bs = this.geometry.blockSize;
    const firstTag = this.nextTag;
    for (let i = 0; i < commands.length; i++) {
      const cmd = commands[i]!;
      const o = i * CMD_SIZE;
      const tag = this.nextTag++;
      let flags = 0;
      if (cmd.op === 'flush') {
        v.setBigUint64(o, 0n, true);
        v.setBigUint64(o + 8, 0n, true);
        v.setUint32(o + 16, 0, true);
        if (cmd.barrier) flags |= FLAG_BARRIER;
      } else if (cmd.op === 'trim') {
        v.setBigUint64(o, 0n, true);
        v.setBigUint64(o + 8, BigInt(cmd.offset / bs), true);
        v.setUint32(o + 16, cmd.length / bs, true);
      } else {
        v.setBigUint64(o, cmd.buffer.address, true);
        v.setBigUint64(o + 8, BigInt(cmd.offset / bs), true);
        v.setUint32(o + 16, cmd.buffer.length / bs, true);
        if (cmd.op === 'write' && cmd.fua) flags |= FLAG_FUA;
      }
      v.setUint8(o + 20, OPCODE[cmd.op]);
      v.setUint8(o + 21, flags);
      v.setUint16(o + 22, 0, true);
      v.setBigUint64(o + 24, BigInt(tag), true);
      this.inflight.set(tag, { batch, cmd });
    }
    return firstTag;
  }

  private reapAvailable(): void {
    if (this.closed) return;
    while (this.reap(0) === REAP_MAX);
    if (this.inflight.size === 0 && this.refd) {
      this.notify.unref();
      this.refd = false;
    }
  }

  /** Reaps and dispatches completions; returns how many. */
  private reap(minWait: number): number {
    const n = this.lib.reap(this.dev, this.cqeBuf, REAP_MAX, minWait);
    if (n < 0) throw new ForestError('IO', `${this.path}: reaping completions failed: ${this.lib.lastError(this.dev)}`);
    const v = this.cqeView;
    for (let i = 0; i < n; i++) {
      const o = i * CQE_SIZE;
      const tag = Number(v.getBigUint64(o, true));
      const result = v.getInt32(o + 8, true);
      const status = v.getUint32(o + 12, true);
      const entry = this.inflight.get(tag);
      if (!entry) continue;
      this.inflight.delete(tag);
      const b = entry.batch;
      if (result < 0 && !b.error) b.error = new IoError(this.path, entry.cmd, -result, status);
      if (--b.remaining === 0) {
        if (b.error) b.reject(b.error);
        else b.resolve();
      }
    }
    return n;
  }
}
