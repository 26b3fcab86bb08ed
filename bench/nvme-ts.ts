/**
 * 4 KiB random reads and writes through the TypeScript device layer (openDevice →
 * NativeDevice: commands packed into one FFI call, completions through the notify pipe),
 * per backend, at queue depths 1 and 32. QD 1 awaits each submit(); QD 32 keeps 32
 * single-command submits in flight; "randread-sync" is readSync(), the synchronous read path (the engine's
 * get() on a cache miss). Prints one BENCH line per point, in the format of
 * test/nvme/ffs_test.c, with layer=ts.
 *
 *   node --import tsx bench/nvme-ts.ts [--secs S] [--span-mib M] [--rounds N] [--skip BACKEND:QD] BACKEND=DEVICE ...
 *
 * Run by `test/nvme/run.sh bench` in the QEMU guest (nvmed=/dev/nvmed0 uring-cmd=/dev/ng0n1
 * uring=/dev/nvme0n1 psync=/dev/nvme0n1). It writes to the devices.
 */
import { cpuUsage, hrtime } from 'node:process';
import { openDevice, type BackendChoice, type BlockDevice, type DeviceBuffer } from '../src/io/index.js';

const args = process.argv.slice(2);
let secs = 0.5;
let rounds = 1;
let rep = 1;
/** BACKEND:QD points not to run (the guest skips psync:32, see test/nvme/guest/lib.sh). */
const skip = new Set<string>();
let failures = 0;
let spanBlocks = 65536;
const targets: { backend: BackendChoice; device: string }[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--secs') secs = Number(args[++i]);
  else if (a === '--span-mib') spanBlocks = Number(args[++i]) * 256;
  else if (a === '--rounds') rounds = Number(args[++i]);
  else if (a === '--skip') skip.add(args[++i]!);
  else {
    const eq = a.indexOf('=');
    if (eq < 0) throw new Error(`expected BACKEND=DEVICE, got ${a}`);
    targets.push({ backend: a.slice(0, eq) as BackendChoice, device: a.slice(eq + 1) });
  }
}

let seed = 0x2545f491;
const rnd = (n: number): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};
const now = (): bigint => hrtime.bigint();

function report(backend: string, op: string, qd: number, ops: number, elapsedNs: bigint, lat: number[], cpuUs: number): void {
  lat.sort((a, b) => a - b);
  const avg = lat.reduce((s, x) => s + x, 0) / Math.max(1, lat.length);
  const q = (p: number) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]! : 0);
  console.log(`BENCH layer=ts rep=${rep} backend=${backend} op=${op} qd=${qd} iops=${Math.round(ops / (Number(elapsedNs) / 1e9))} ` +
    `lat_avg_us=${(avg / 1000).toFixed(1)} lat_p50_us=${(q(0.5) / 1000).toFixed(1)} lat_p99_us=${(q(0.99) / 1000).toFixed(1)} ` +
    `cpu_us_per_io=${(cpuUs / Math.max(1, ops)).toFixed(1)}`);
}

async function point(dev: BlockDevice, backend: string, op: 'randread' | 'randwrite' | 'randread-sync', qd: number, bufs: DeviceBuffer[], quiet = false): Promise<void> {
  const lat: number[] = [];
  let ops = 0;
  const t0 = now();
  const end = t0 + BigInt(Math.round(secs * 1e9));
  const c0 = cpuUsage();
  if (op === 'randread-sync') {
    const buf = bufs[0]!;
    while (now() < end) {
      const t = now();
      dev.readSync(rnd(spanBlocks) * 4096, buf);
      lat.push(Number(now() - t));
      ops++;
    }
  } else {
    let error: Error | null = null;
    const worker = async (buf: DeviceBuffer) => {
      while (now() < end && !error) {
        const t = now();
        try {
          await dev.submit([{ op: op === 'randread' ? 'read' : 'write', offset: rnd(spanBlocks) * 4096, buffer: buf }]);
        } catch (e) {
          error ??= e as Error; // the other workers stop too; every rejection is handled
          return;
        }
        lat.push(Number(now() - t));
        ops++;
      }
    };
    await Promise.all(bufs.slice(0, qd).map(worker));
    if (error) throw error;
  }
  const elapsed = now() - t0;
  const c = cpuUsage(c0);
  if (!quiet) report(backend, op, qd, ops, elapsed, lat, c.user + c.system);
}

const opened = targets.map(({ backend, device }) => {
  const dev = openDevice(device, { backend, queueDepth: 64, noLock: true });
  const bufs = Array.from({ length: 32 }, () => {
    const b = dev.allocBuffer(4096);
    b.bytes.fill(0x3c);
    return b;
  });
  return { backend, dev, bufs };
});
for (const o of opened) {
  try {
    await point(o.dev, o.backend, 'randread', skip.has(`${o.backend}:32`) ? 1 : 32, o.bufs, true); // warm-up
  } catch (e) {
    console.log(`BENCH-ERROR layer=ts rep=0 backend=${o.backend} op=warm-up: ${(e as Error).message}`);
  }
}
// Every point runs each backend in turn, the first one rotating from round to round, so
// that noise from the host hits them alike (as the C bench does).
for (let round = 1; round <= rounds; round++) {
  rep = round;
  for (const [op, qd] of [['randwrite', 1], ['randwrite', 32], ['randread', 1], ['randread', 32], ['randread-sync', 1]] as const) {
    for (let i = 0; i < opened.length; i++) {
      const o = opened[(i + round - 1) % opened.length]!;
      if (skip.has(`${o.backend}:${qd}`)) continue;
      try {
        await point(o.dev, o.backend, op, qd, o.bufs);
      } catch (e) {
        // e.g. EINTR: the kernel cancelled a passthrough command when it reset a stalled controller
        console.log(`BENCH-ERROR layer=ts rep=${rep} backend=${o.backend} op=${op} qd=${qd}: ${(e as Error).message}`);
        failures++;
      }
    }
  }
}
for (const o of opened) {
  for (const b of o.bufs) o.dev.freeBuffer(b);
  await o.dev.close();
}
if (failures) console.log(`INFO bench/nvme-ts.ts: ${failures} point(s) failed (BENCH-ERROR lines)`);
