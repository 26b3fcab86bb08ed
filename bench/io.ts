/**
 * bench/io.ts — the I/O layer against the device floor, in one run.
 *
 * For each backend: sequential writes in 1 MiB commands and 4 KiB random reads and writes
 * at queue depths 1, 8 and 32. Floors measured beside them: `dd oflag=direct` for
 * sequential writes, and the same patterns done with plain pread/pwrite on O_DIRECT by a
 * small C program (one thread per unit of queue depth). Prints MB/s, IOPS, the ratio to
 * the floor, and the main thread's CPU time per operation from /proc/self/task/PID/stat,
 * split into user time (JS, FFI, batching: the layer's own overhead) and system time (the
 * kernel's submission path, which the floor pays too).
 *
 *   npx tsx bench/io.ts [--quick] [--seconds S] [--size 1GiB] [--dir DIR]
 *                       [--backends uring,psync,node-fs] [--json FILE]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { openDevice, parseSize, resolveAuto, type BlockDevice, type DeviceBuffer, type IoCommand } from '../src/io/index.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    size: { type: 'string', default: '1GiB' },
    dir: { type: 'string', default: '.bench-io' },
    backends: { type: 'string', default: 'uring,psync,node-fs' },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(`usage: npx tsx bench/io.ts [--quick] [--seconds S] [--size 1GiB] [--dir DIR] [--backends uring,psync,node-fs] [--json FILE]
Runs each pattern for S seconds (default 2, --quick 0.5) on an image file of --size in --dir
(default ./.bench-io, removed afterwards) and prints the table with ratios to the device floor.`);
  process.exit(0);
}

const seconds = Number(args.seconds ?? (args.quick ? 0.5 : 2));
const size = parseSize(args.size!);
const dir = resolve(args.dir!);
const image = join(dir, 'bench.img');
const QDS = [1, 8, 32];
const MiB = 1 << 20;

interface Row {
  backend: string;
  pattern: 'seqwrite' | 'randread' | 'randwrite';
  qd: number;
  block: number;
  ops: number;
  seconds: number;
  mbps: number;
  iops: number;
  /** Main-thread user-mode CPU microseconds per operation (JS + FFI + batching). */
  userUsPerOp?: number;
  /** Main-thread kernel CPU microseconds per operation (system calls, block layer). */
  sysUsPerOp?: number;
}

function log(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

function buildFloor(): string | null {
  const bin = join(dir, 'io-floor');
  const r = spawnSync('cc', ['-O2', '-pthread', '-o', bin, join(import.meta.dirname, 'io-floor.c')], { encoding: 'utf8' });
  if (r.status !== 0) {
    log(`no C compiler: random-I/O floors skipped (${r.stderr || r.error})`);
    return null;
  }
  return bin;
}

function floorRun(bin: string, pattern: Row['pattern'], block: number, qd: number): Row {
  const out = execFileSync(bin, [pattern, image, String(size), String(block), String(qd), String(seconds)], { encoding: 'utf8' });
  const [ops, bytes, secs] = out.trim().split(/\s+/).map(Number) as [number, number, number];
  return { backend: 'floor (pread/pwrite)', pattern, qd, block, ops, seconds: secs, mbps: bytes / secs / 1e6, iops: ops / secs };
}

function ddFloor(): Row {
  const count = Math.min(size / MiB, args.quick ? 256 : 1024);
  const t0 = performance.now();
  execFileSync('dd', ['if=/dev/zero', `of=${image}`, 'bs=1M', `count=${count}`, 'oflag=direct', 'conv=notrunc'], { stdio: 'ignore' });
  const secs = (performance.now() - t0) / 1000;
  return { backend: 'floor (dd oflag=direct)', pattern: 'seqwrite', qd: 1, block: MiB, ops: count, seconds: secs, mbps: (count * MiB) / secs / 1e6, iops: count / secs };
}

/**
 * Keeps up to `qd` commands in flight, submitted in groups of qd/4 (so the queue never
 * drains while a group completes), for `seconds`.
 */
/** The main thread's user and system CPU time in milliseconds (clock ticks of 10 ms). */
function mainThreadCpu(): { user: number; sys: number } {
  const fields = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) * 10, sys: Number(fields[12]) * 10 };
}

async function drive(dev: BlockDevice, qd: number, make: (slot: DeviceBuffer, i: number) => IoCommand, bufs: DeviceBuffer[]): Promise<{ ops: number; secs: number; userMs: number; sysMs: number }> {
  const group = Math.max(1, qd / 4);
  let inflight = 0;
  let ops = 0;
  let issued = 0;
  const free = [...bufs];
  const cpu0 = mainThreadCpu();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await new Promise<void>((done, fail) => {
    const refill = (): void => {
      while (inflight + group <= qd && performance.now() < end) {
        const mine = free.splice(0, group);
        const cmds = mine.map((b) => make(b, issued++));
        inflight += group;
        dev.submit(cmds).then(() => {
          inflight -= group;
          ops += group;
          free.push(...mine);
          refill();
          if (inflight === 0) done();
        }, fail);
      }
    };
    refill();
  });
  const secs = (performance.now() - t0) / 1000;
  const cpu1 = mainThreadCpu();
  return { ops, secs, userMs: cpu1.user - cpu0.user, sysMs: cpu1.sys - cpu0.sys };
}

async function benchBackend(backend: string): Promise<Row[]> {
  const rows: Row[] = [];
  const dev = openDevice(`${backend}:${image}`, { queueDepth: 64 });
  try {
    const blocks4k = dev.geometry.capacity / 4096;
    let seed = 99;
    const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % blocks4k;
    for (const pattern of ['seqwrite', 'randread', 'randwrite'] as const) {
      for (const qd of QDS) {
        const block = pattern === 'seqwrite' ? MiB : 4096;
        const bufs = Array.from({ length: qd }, () => dev.allocBuffer(block));
        for (const b of bufs) b.bytes.fill(0x33);
        const perFile = dev.geometry.capacity / block;
        const make = (buffer: DeviceBuffer, i: number): IoCommand =>
          pattern === 'seqwrite' ? { op: 'write', offset: (i % perFile) * block, buffer }
            : { op: pattern === 'randread' ? 'read' : 'write', offset: rnd() * 4096, buffer };
        log(`  ${backend} ${pattern} qd=${qd}`);
        const r = await drive(dev, qd, make, bufs);
        await dev.submit([{ op: 'flush' }]);
        for (const b of bufs) dev.freeBuffer(b);
        rows.push({ backend, pattern, qd, block, ops: r.ops, seconds: r.secs, mbps: (r.ops * block) / r.secs / 1e6, iops: r.ops / r.secs, userUsPerOp: (r.userMs * 1000) / r.ops, sysUsPerOp: (r.sysMs * 1000) / r.ops });
      }
    }
  } finally {
    await dev.close();
  }
  return rows;
}

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    log(`image ${image}, ${size} bytes, ${seconds}s per case; auto → ${resolveAuto().backend}`);
    execFileSync('truncate', ['-s', String(size), image]);
    log('floor: dd oflag=direct (also fills the image so reads hit the device)');
    const rows: Row[] = [ddFloor()];
    execFileSync('dd', ['if=/dev/zero', `of=${image}`, 'bs=1M', `count=${size / MiB}`, 'oflag=direct', 'conv=notrunc'], { stdio: 'ignore' });
    const floorBin = buildFloor();
    if (floorBin) {
      for (const pattern of ['seqwrite', 'randread', 'randwrite'] as const) {
        for (const qd of QDS) {
          log(`floor: ${pattern} qd=${qd}`);
          rows.push(floorRun(floorBin, pattern, pattern === 'seqwrite' ? MiB : 4096, qd));
        }
      }
    }
    for (const b of args.backends!.split(',')) {
      log(`backend ${b}`);
      rows.push(...(await benchBackend(b)));
    }
    report(rows);
    if (args.json) {
      writeFileSync(args.json, JSON.stringify({ machine: { cpu: cpus()[0]?.model, cores: cpus().length, memory: totalmem(), node: process.version }, size, seconds, rows }, null, 2));
      log(`wrote ${args.json}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(rows: Row[]): void {
  const floorOf = (r: Row): Row | undefined =>
    rows.find((f) => f.backend === 'floor (pread/pwrite)' && f.pattern === r.pattern && f.qd === r.qd);
  const dd = rows.find((f) => f.backend.startsWith('floor (dd'));
  const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log('\n| backend | pattern | QD | MB/s | IOPS | floor MB/s | × floor | × dd | main thread user µs/op | main thread sys µs/op |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const f = floorOf(r);
    const isFloor = r.backend.startsWith('floor');
    const ratio = !isFloor && f ? fmt(r.mbps / f.mbps, 2) : '';
    const ddRatio = r.pattern === 'seqwrite' && dd && r !== dd ? fmt(r.mbps / dd.mbps, 2) : '';
    console.log(`| ${r.backend} | ${r.pattern} | ${r.qd} | ${fmt(r.mbps)} | ${fmt(r.iops)} | ${f && !isFloor ? fmt(f.mbps) : ''} | ${ratio} | ${ddRatio} | ${r.userUsPerOp !== undefined ? fmt(r.userUsPerOp, 2) : ''} | ${r.sysUsPerOp !== undefined ? fmt(r.sysUsPerOp, 2) : ''} |`);
  }
  const seq = rows.find((r) => r.backend === 'uring' && r.pattern === 'seqwrite' && r.qd === 1);
  const qd32 = rows.filter((r) => r.backend === 'uring' && r.qd === 32 && r.pattern !== 'seqwrite');
  console.log('\nTargets:');
  if (seq && dd) console.log(`  uring sequential write (1 MiB, QD 1) ≥ 0.9× dd oflag=direct: ${fmt(seq.mbps / dd.mbps, 2)}× ${seq.mbps / dd.mbps >= 0.9 ? 'PASS' : 'SHORT'}`);
  for (const r of qd32) console.log(`  uring ${r.pattern} QD 32: FFI + batching (main-thread user time) ${fmt(r.userUsPerOp ?? 0, 2)} µs/op (target ≤ 2) ${(r.userUsPerOp ?? 99) <= 2 ? 'PASS' : 'SHORT'}`);
}

await main();
