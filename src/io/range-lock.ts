import { closeSync, openSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { libc } from './file-lock.js';

/**
 * Advisory byte-range locks on a file or block device, as Linux open file description (OFD)
 * locks (fcntl F_OFD_SETLK / F_OFD_GETLK). Unlike classic POSIX locks they belong to one open
 * of the file, not to the process: two opens in one process conflict like two processes do,
 * and closing one open (or the death of its process) releases only its own locks. No byte of
 * the file is read or written; the ranges are names, and may lie beyond the file's end.
 */
type Fcntl = (fd: number, cmd: number, type: string, arg: Uint8Array) => number;

const F_OFD_GETLK = 36;
const F_OFD_SETLK = 37;
const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
/** struct flock on Linux's 64-bit ABIs: l_type (short), l_whence (short), l_start, l_len (off_t), l_pid. */
const FLOCK_SIZE = 32;

let fcntlFn: Fcntl | null | undefined;

function load(): Fcntl | null {
  if (fcntlFn !== undefined) return fcntlFn;
  fcntlFn = null;
  const lib = process.platform === 'linux' && endianness() === 'LE' && process.arch !== 'ia32' && process.arch !== 'arm' ? libc() : null;
  if (lib) {
    const f = lib.func('int fcntl(int fd, int cmd, ...)');
    fcntlFn = (fd, cmd, type, arg) => f(fd, cmd, type, arg) as number;
  }
  return fcntlFn;
}

export class RangeLocks {
  private readonly lk = new Uint8Array(FLOCK_SIZE);
  private readonly view = new DataView(this.lk.buffer);

  private constructor(private fd: number, private readonly fcntl: Fcntl) {}

  /**
   * Opens `path` for locking (nothing is read or written; `writable` opens it read-write, which
   * an exclusive lock needs). null when the platform has no OFD locks or the path is not a
   * regular file or a block device (a character device's open may have side effects; memory
   * and test devices have no path).
   */
  static open(path: string, writable = false): RangeLocks | null {
    const fcntl = load();
    if (!fcntl) return null;
    let st;
    try {
      st = statSync(path);
    } catch {
      return null;
    }
    if (!st.isFile() && !st.isBlockDevice()) return null;
    let fd: number;
    try {
      fd = openSync(path, writable ? 'r+' : 'r');
    } catch {
      return null;
    }
    const locks = new RangeLocks(fd, fcntl);
    // A file system without OFD locks (some network file systems) refuses the first one.
    if (!locks.set(F_RDLCK, 0, 1) || !locks.set(F_UNLCK, 0, 1)) {
      locks.close();
      return null;
    }
    return locks;
  }

  /** Takes a shared lock on [start, start + length); false if it could not be taken. */
  share(start: number, length: number): boolean {
    return this.set(F_RDLCK, start, length);
  }

  /** Takes an exclusive lock on [start, start + length) (needs a writable open); false if it could not be taken. */
  lock(start: number, length: number): boolean {
    return this.set(F_WRLCK, start, length);
  }

  /** Releases this open's locks on [start, start + length). */
  unlock(start: number, length: number): void {
    this.set(F_UNLCK, start, length);
  }

  /** Whether another open holds a lock on any byte of [start, start + length). */
  taken(start: number, length: number): boolean {
    this.fill(F_WRLCK, start, length);
    if (this.fcntl(this.fd, F_OFD_GETLK, 'void *', this.lk) !== 0) return false;
    return this.view.getInt16(0, true) !== F_UNLCK;
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }

  private set(type: number, start: number, length: number): boolean {
    if (this.fd < 0) return false;
    this.fill(type, start, length);
    return this.fcntl(this.fd, F_OFD_SETLK, 'void *', this.lk) === 0;
  }

  private fill(type: number, start: number, length: number): void {
    this.lk.fill(0);
    this.view.setInt16(0, type, true);
    this.view.setInt16(2, 0, true); // SEEK_SET
    this.view.setBigInt64(8, BigInt(start), true);
    this.view.setBigInt64(16, BigInt(length), true);
  }
}
