// Machine facts, /proc/self/io, peak RSS, directory sizes, and garbage collection.
import { readFileSync, readdirSync, lstatSync, existsSync, writeFileSync, statSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { IoDelta } from './types.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  kernel: string;
  kernelVersion: string;
  platform: string;
  arch: string;
  node: string;
  v8: string;
  hostname: string;
  tmpFs: string;
  /** 1/5/15-minute load averages when the run started and ended (others may share the machine). */
  loadAvgStart?: number[];
  loadAvgEnd?: number[];
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

export function machineInfo(tmpDir: string): MachineInfo {
  const cpus = os.cpus();
  let cpuModel = cpus[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) cpuModel = m[1].trim();
  } catch {
    /* not Linux */
  }
  // File system type and device of the scratch directory (df -T).
  const df = sh('df', ['-T', '-P', tmpDir]).split('\n')[1]?.split(/\s+/) ?? [];
  return {
    cpuModel,
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    kernel: os.release(),
    kernelVersion: os.version(),
    platform: os.platform(),
    arch: os.arch(),
    node: process.version,
    v8: process.versions.v8,
    hostname: os.hostname(),
    tmpFs: df.length >= 2 ? `${df[1]} on ${df[0]}` : 'unknown',
  };
}

/** Version of an installed package, read from node_modules (exports maps can hide package.json). */
export function packageVersion(name: string): string {
  try {
    const pj = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version?: string };
    return pj.version ?? 'unknown';
  } catch {
    return 'not installed';
  }
}

// ---------------------------------------------------------------- /proc/self/io

interface IoCounters {
  rchar: number;
  wchar: number;
  read_bytes: number;
  write_bytes: number;
  cancelled_write_bytes: number;
}

const hasProcIo = existsSync('/proc/self/io');

export function readIo(): IoCounters | null {
  if (!hasProcIo) return null;
  try {
    const out: Record<string, number> = {};
    for (const line of readFileSync('/proc/self/io', 'utf8').split('\n')) {
      const [k, v] = line.split(':');
      if (k && v) out[k.trim()] = Number(v.trim());
    }
    return out as unknown as IoCounters;
  } catch {
    return null;
  }
}

export function ioDelta(a: IoCounters | null, b: IoCounters | null): IoDelta | undefined {
  if (!a || !b) return undefined;
  return {
    writeBytes: b.write_bytes - a.write_bytes,
    cancelledWriteBytes: b.cancelled_write_bytes - a.cancelled_write_bytes,
    wchar: b.wchar - a.wchar,
    readBytes: b.read_bytes - a.read_bytes,
    rchar: b.rchar - a.rchar,
  };
}

// ---------------------------------------------------------------- memory

function statusField(name: string): number {
  try {
    const m = new RegExp(`^${name}:\\s*(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

let hwmResettable: boolean | undefined;

/** Reset the kernel's peak-RSS counter (VmHWM) to the current RSS. Returns false if impossible. */
export function resetPeakRss(): boolean {
  if (hwmResettable === false) return false;
  try {
    // "5" resets the peak resident set size (Linux >= 4.0); needs write access to clear_refs.
    writeFileSync('/proc/self/clear_refs', '5');
    hwmResettable = true;
  } catch {
    hwmResettable = false;
  }
  return hwmResettable;
}

export function currentRss(): number {
  const v = statusField('VmRSS');
  return Number.isFinite(v) ? v : process.memoryUsage().rss;
}

export function peakRss(): number {
  const v = statusField('VmHWM');
  return Number.isFinite(v) ? v : process.memoryUsage().rss;
}

export function peakMethod(): string {
  return hwmResettable ? 'vmhwm-reset' : existsSync('/proc/self/status') ? 'vmhwm-process-lifetime' : 'rss-at-end';
}

// ---------------------------------------------------------------- gc

let gcFn: (() => void) | undefined;
export function gc(): void {
  if (!gcFn) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') gcFn = g;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    }
  }
  gcFn();
}

// ---------------------------------------------------------------- directory sizes

export interface DirSize {
  /** Sum of st_blocks*512 over regular files: what is actually allocated on the device. */
  allocated: number;
  /** Sum of st_size over regular files. */
  apparent: number;
  files: number;
}

export function dirSize(dir: string): DirSize {
  const out: DirSize = { allocated: 0, apparent: 0, files: 0 };
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      let st;
      try {
        st = lstatSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        out.allocated += st.blocks * 512;
        out.apparent += st.size;
        out.files++;
      }
    }
  };
  walk(dir);
  return out;
}

// ---------------------------------------------------------------- block device counters

/** The /sys stat file of the block device (or partition) holding `dir`, or null. */
export function blockStatFile(dir: string): string | null {
  try {
    const dev = statSync(dir, { bigint: true }).dev;
    const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
    const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
    const f = `/sys/dev/block/${major}:${minor}/stat`;
    return existsSync(f) ? f : null;
  } catch {
    return null;
  }
}

/** Bytes written to the device so far (sectors written × 512, whole device: every process,
 *  file-system journal included). */
export function deviceWrittenBytes(statFile: string | null): number {
  if (!statFile) return NaN;
  try {
    const f = readFileSync(statFile, 'utf8').trim().split(/\s+/);
    return Number(f[6]) * 512;
  } catch {
    return NaN;
  }
}

/** syncfs() the file system holding `dir` (coreutils `sync -f`), so write-back is counted. */
export function syncFs(dir: string): void {
  spawnSync('sync', ['-f', dir], { stdio: 'ignore' });
}
