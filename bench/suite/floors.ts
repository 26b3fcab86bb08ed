// Device floors, measured in the same run as the stores: the cost of one durable 4 KiB write
// (commit floor) and sequential O_DIRECT write bandwidth (bandwidth floor).
//
// Node cannot issue O_DIRECT writes from aligned buffers by itself, so floor.c is compiled with
// `cc` into the scratch directory at run time. Without a compiler, `dd oflag=direct` is used and
// labelled as such (it gives a mean, not per-op percentiles).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarizeNs } from './stats.js';
import type { LatencySummary } from './types.js';

const FLOOR_C = join(dirname(fileURLToPath(import.meta.url)), 'floor.c');

export interface CommitFloor {
  method: string;
  ops: number;
  latency: LatencySummary;
  samplesNs?: number[];
}

export interface BandwidthFloor {
  method: string;
  bytes: number;
  seconds: number;
  mbPerSec: number;
}

export interface FloorResult {
  rep: number;
  commit: CommitFloor | { method: string; error: string };
  bandwidth: BandwidthFloor | { method: string; error: string };
}

export class FloorProbe {
  private binary: string | null = null;
  readonly compileNote: string;

  constructor(private readonly scratch: string) {
    const out = join(scratch, 'floor');
    const cc = spawnSync('cc', ['-O2', '-o', out, FLOOR_C], { encoding: 'utf8' });
    if (cc.status === 0 && existsSync(out)) {
      this.binary = out;
      this.compileNote = `compiled bench/suite/floor.c with cc -O2`;
    } else {
      this.compileNote = `cc unavailable or failed (${(cc.error?.message ?? cc.stderr ?? '').trim().split('\n')[0]}); using dd oflag=direct fallback`;
    }
  }

  get method(): 'floor.c' | 'dd' {
    return this.binary ? 'floor.c' : 'dd';
  }

  commit(ops: number, keepSamples: boolean): CommitFloor {
    const file = join(this.scratch, 'floor-commit.dat');
    try {
      if (this.binary) {
        const out = execFileSync(this.binary, ['commit', file, String(ops)], { encoding: 'utf8', maxBuffer: 64 << 20 });
        const samples = out.trim().split('\n').map(Number);
        const r: CommitFloor = {
          method: 'floor.c: 4 KiB O_DIRECT pwrite over written block + fdatasync, per op',
          ops: samples.length,
          latency: summarizeNs(samples),
        };
        if (keepSamples) r.samplesNs = samples;
        return r;
      }
      // Fallback: dd with O_DIRECT|O_DSYNC; only a mean per op is available.
      const { seconds } = runDd(['if=/dev/zero', `of=${file}`, 'bs=4k', `count=${ops}`, 'oflag=direct,dsync']);
      const mean = (seconds * 1e9) / ops;
      return {
        method: 'dd bs=4k oflag=direct,dsync (FALLBACK: mean only; p50/p99 shown are the mean)',
        ops,
        latency: { count: ops, minNs: mean, p50Ns: mean, p90Ns: mean, p99Ns: mean, p999Ns: mean, maxNs: mean, meanNs: mean },
      };
    } finally {
      rmSync(file, { force: true });
    }
  }

  bandwidth(totalMiB: number): BandwidthFloor {
    const file = join(this.scratch, 'floor-bw.dat');
    try {
      if (this.binary) {
        const out = execFileSync(this.binary, ['bw', file, String(totalMiB)], { encoding: 'utf8' }).trim();
        const [bytes, ns] = out.split(/\s+/).map(Number) as [number, number];
        return {
          method: 'floor.c: sequential 1 MiB O_DIRECT pwrite, QD1, new file, + final fdatasync',
          bytes,
          seconds: ns / 1e9,
          mbPerSec: bytes / 1e6 / (ns / 1e9),
        };
      }
      const { bytes, seconds } = runDd(['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${totalMiB}`, 'oflag=direct', 'conv=fdatasync']);
      return { method: 'dd bs=1M oflag=direct conv=fdatasync (FALLBACK)', bytes, seconds, mbPerSec: bytes / 1e6 / seconds };
    } finally {
      rmSync(file, { force: true });
    }
  }
}

function runDd(args: string[]): { bytes: number; seconds: number } {
  const r = spawnSync('dd', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dd failed: ${r.stderr}`);
  // "268435456 bytes (268 MB, 256 MiB) copied, 0.12 s, 2.2 GB/s"
  const m = /(\d+) bytes.*copied, ([\d.]+) s/.exec(r.stderr);
  if (!m) throw new Error(`cannot parse dd output: ${r.stderr}`);
  return { bytes: Number(m[1]), seconds: Number(m[2]) };
}
