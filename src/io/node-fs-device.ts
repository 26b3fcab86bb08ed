import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { ForestError } from '../errors.js';
import { tryLockExclusive } from './file-lock.js';
import { JsDevice, jsGeometry } from './js-device.js';
import type { Geometry } from './types.js';

const read = promisify(fs.read);
const write = promisify(fs.write);
const fdatasync = promisify(fs.fdatasync);

export interface NodeFsOpenOptions {
  readOnly?: boolean;
  createSize?: number;
  noLock?: boolean;
}

/**
 * Pure Node: an image file through `fs`, buffered by the page cache, made durable by
 * fdatasync at flush. Works wherever Node runs (no compiler, macOS, Windows).
 */
export class NodeFsDevice extends JsDevice {
  readonly backend = 'node-fs' as const;
  readonly path: string;
  readonly geometry: Geometry;
  private readonly fd: number;

  private constructor(path: string, fd: number, geometry: Geometry) {
    super();
    this.path = path;
    this.fd = fd;
    this.geometry = geometry;
  }

  static open(path: string, opts: NodeFsOpenOptions = {}): NodeFsDevice {
    let created = false;
    let fd: number;
    try {
      fd = fs.openSync(path, opts.readOnly ? 'r' : 'r+');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' || opts.readOnly || opts.createSize === undefined) {
        throw new ForestError(code === 'ENOENT' ? 'NOT_FOUND' : 'IO', `cannot open ${path}: ${(e as Error).message}`);
      }
      fd = fs.openSync(path, 'wx+', 0o600);
      created = true;
    }
    try {
      if (!opts.readOnly && !opts.noLock && tryLockExclusive(fd) === 'busy') {
        throw new ForestError('LOCKED', `${path} is locked by another writer`);
      }
      if (created) fs.ftruncateSync(fd, opts.createSize!);
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new ForestError('INVALID_ARGUMENT', `${path}: the node-fs backend needs a regular file`);
      if (st.size < 4096) throw new ForestError('INVALID_ARGUMENT', `${path}: capacity is ${st.size} bytes, smaller than one block`);
      const geometry = jsGeometry({ capacity: st.size, created, readOnly: opts.readOnly ?? false, volatileCache: null, trim: false });
      return new NodeFsDevice(path, fd, geometry);
    } catch (e) {
      fs.closeSync(fd);
      if (created) fs.rmSync(path, { force: true });
      throw e;
    }
  }

  protected async doRead(offset: number, bytes: Uint8Array): Promise<void> {
    for (let done = 0; done < bytes.length;) {
      const { bytesRead } = await read(this.fd, bytes, done, bytes.length - done, offset + done);
      done += shortReadCheck(bytesRead);
    }
  }

  protected doReadSync(offset: number, bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length;) {
      done += shortReadCheck(fs.readSync(this.fd, bytes, done, bytes.length - done, offset + done));
    }
  }

  protected async doWrite(offset: number, bytes: Uint8Array, fua: boolean): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await write(this.fd, bytes, done, bytes.length - done, offset + done);
      done += bytesWritten;
    }
    // Write through: Node has no RWF_DSYNC, so a FUA write is a write and a data sync.
    if (fua) await fdatasync(this.fd);
  }

  protected async doFlush(): Promise<void> {
    await fdatasync(this.fd);
  }

  protected doTrim(): void {
    throw new ForestError('UNSUPPORTED', `${this.path}: the node-fs backend cannot trim`);
  }

  protected doClose(): void {
    fs.closeSync(this.fd);
  }
}

/** A read that returns nothing before the end of the range: the file shrank under us. */
function shortReadCheck(n: number): number {
  if (n === 0) throw Object.assign(new Error('short read'), { errno: 5 /* EIO */ });
  return n;
}
