// Runs every selected store/mode through the workloads, repetition by repetition, rotating which
// store goes first, and measures the device floors at the start of every repetition.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, WorkloadName } from './config.js';
import {
  BigValuePool,
  Stream,
  longKeys,
  permutation,
  prepareKeys,
  randomIndices,
  randomValues,
  userKeys,
} from './data.js';
import { FloorProbe, type FloorResult } from './floors.js';
import {
  blockStatFile,
  currentRss,
  deviceWrittenBytes,
  dirSize,
  gc,
  ioDelta,
  peakMethod,
  peakRss,
  readIo,
  resetPeakRss,
  syncFs,
} from './sysinfo.js';
import type { AdapterFactory, Key, Mode, RunRecord, StoreAdapter, WorkloadResult } from './types.js';
import * as W from './workloads.js';

const MiB = 1024 * 1024;

/** Everything generated from the seed, once per run. */
class DataSets {
  readonly keyStrings: string[];
  readonly values: Buffer[];
  readonly loadOrder: Uint32Array;
  readonly getIdx: Uint32Array;
  readonly getSampleIdx: Uint32Array;
  readonly asyncIdx: Uint32Array;
  readonly seekIdx: Uint32Array;
  readonly overwriteOrder: Uint32Array;
  readonly overwriteValues: Buffer[];
  readonly smallIdx: Uint32Array;
  readonly smallValues: Buffer[];
  readonly longKeyStrings: string[];
  readonly longValues: Buffer[];
  readonly longGetIdx: Uint32Array;
  private readonly keyCache = new Map<string, Key[]>();

  constructor(readonly c: Config) {
    const n = c.keys;
    this.keyStrings = userKeys(n);
    this.values = randomValues(n, c.valueSize, c.seed, Stream.values);
    this.loadOrder = permutation(n, c.seed, Stream.order);
    this.getIdx = randomIndices(c.gets, n, c.seed, Stream.gets);
    this.getSampleIdx = randomIndices(c.getSample, n, c.seed, Stream.gets + 100);
    this.asyncIdx = randomIndices(c.asyncGets, n, c.seed, Stream.gets + 200);
    this.seekIdx = randomIndices(c.seeks, n, c.seed, Stream.seeks);
    this.overwriteOrder = permutation(n, c.seed, Stream.overwrite).subarray(0, Math.floor(n / 2));
    this.overwriteValues = randomValues(this.overwriteOrder.length, c.valueSize, c.seed, Stream.overwriteValues);
    this.smallIdx = randomIndices(c.smallPuts, n, c.seed, Stream.smallPut);
    this.smallValues = randomValues(c.smallPuts, c.valueSize, c.seed, Stream.smallPut + 100);
    this.longKeyStrings = c.workloads.has('long-keys') ? longKeys(c.longKeys, c.seed) : [];
    this.longValues = c.workloads.has('long-keys') ? randomValues(c.longKeys, c.valueSize, c.seed, Stream.longValues) : [];
    this.longGetIdx = randomIndices(c.workloads.has('long-keys') ? c.gets : 0, Math.max(1, c.longKeys), c.seed, Stream.longGets);
  }

  keys(kind: 'buffer' | 'string'): Key[] {
    return this.cached('user:' + kind, () => prepareKeys(this.keyStrings, kind));
  }
  longKeys(kind: 'buffer' | 'string'): Key[] {
    return this.cached('long:' + kind, () => prepareKeys(this.longKeyStrings, kind));
  }
  private cached(id: string, make: () => Key[]): Key[] {
    let v = this.keyCache.get(id);
    if (!v) {
      v = make();
      this.keyCache.set(id, v);
    }
    return v;
  }
}

export interface Progress {
  (msg: string): void;
}

export interface RunOutput {
  floors: FloorResult[];
  runs: RunRecord[];
  floorCompileNote: string;
  adapters: { store: string; mode: Mode; settings: Record<string, unknown>; notes: readonly string[]; compactLabel: string }[];
}

export class Runner {
  private readonly data: DataSets;
  private readonly scratch: string;
  private seq = 0;
  private readonly adapterInfo = new Map<string, RunOutput['adapters'][number]>();

  constructor(
    private readonly c: Config,
    private readonly factories: AdapterFactory[],
    private readonly log: Progress,
  ) {
    this.scratch = join(c.tmp, `run-${process.pid}-${Date.now()}`);
    mkdirSync(this.scratch, { recursive: true });
    this.log(`generating data (seed ${c.seed}, ${c.keys.toLocaleString('en-US')} keys)…`);
    this.data = new DataSets(c);
  }

  get scratchDir(): string {
    return this.scratch;
  }

  cleanup(): void {
    rmSync(this.scratch, { recursive: true, force: true });
  }

  async run(): Promise<RunOutput> {
    const c = this.c;
    const floors: FloorResult[] = [];
    const runs: RunRecord[] = [];
    const probe = new FloorProbe(this.scratch);
    this.log(`floors: ${probe.compileNote}`);
    const configsPerRep = this.factories.length * c.modes.length;
    for (let rep = 0; rep < c.reps; rep++) {
      floors.push(this.floors(probe, rep));
      const order = rotate(this.factories, rep);
      const modes = rep % 2 === 0 ? c.modes : [...c.modes].reverse();
      let position = 0;
      for (const f of order) {
        for (const mode of modes) {
          const tag = `[rep ${rep + 1}/${c.reps} · ${position + 1}/${configsPerRep}] ${f.store}/${mode}`;
          runs.push(await this.session(f, mode, rep, position, tag));
          position++;
        }
      }
    }
    return { floors, runs, floorCompileNote: probe.compileNote, adapters: [...this.adapterInfo.values()] };
  }

  private floors(probe: FloorProbe, rep: number): FloorResult {
    const c = this.c;
    const res: FloorResult = { rep, commit: { method: probe.method, error: 'not run' }, bandwidth: { method: probe.method, error: 'not run' } };
    this.log(`[rep ${rep + 1}/${c.reps}] floor: commit (${c.commitFloorOps} × 4 KiB O_DIRECT + fdatasync)…`);
    try {
      res.commit = probe.commit(c.commitFloorOps, c.rawSamples);
    } catch (e) {
      res.commit = { method: probe.method, error: (e as Error).message };
    }
    this.log(`[rep ${rep + 1}/${c.reps}] floor: bandwidth (${c.bwFloorMiB} MiB, 1 MiB O_DIRECT writes)…`);
    try {
      res.bandwidth = probe.bandwidth(c.bwFloorMiB);
    } catch (e) {
      res.bandwidth = { method: probe.method, error: (e as Error).message };
    }
    return res;
  }

  private freshDir(store: string, mode: Mode, what: string): string {
    const d = join(this.scratch, `${String(this.seq++).padStart(3, '0')}-${store}-${mode}-${what}`);
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
    return d;
  }

  private record(a: StoreAdapter): void {
    const id = `${a.store}/${a.mode}`;
    if (!this.adapterInfo.has(id)) {
      this.adapterInfo.set(id, { store: a.store, mode: a.mode, settings: a.settings(), notes: a.notes, compactLabel: a.compactLabel });
    }
  }

  /** Run one workload with memory and I/O accounting around it. */
  private async measure(name: string, tag: string, fn: (r: WorkloadResult) => Promise<void> | void): Promise<WorkloadResult> {
    const r: WorkloadResult = { workload: name, metrics: {}, wallSeconds: 0 };
    gc();
    resetPeakRss();
    const rssStart = currentRss();
    const io0 = readIo();
    const t0 = process.hrtime.bigint();
    this.log(`${tag} · ${name}…`);
    try {
      await fn(r);
    } catch (e) {
      // One failing workload (e.g. an operation a store does not support yet) must not stop the
      // others: record it and go on.
      r.error = (e as Error).stack ?? String(e);
      this.log(`${tag} · ${name} FAILED: ${(e as Error).message}`);
    }
    r.wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const io = ioDelta(io0, readIo());
    if (io) r.io = io;
    r.memory = { rssStart, rssPeak: peakRss(), method: peakMethod() };
    r.metrics.rss_peak_mib = r.memory.rssPeak / MiB;
    r.metrics.rss_start_mib = rssStart / MiB;
    this.log(`${tag} · ${name} done in ${r.wallSeconds.toFixed(2)} s${r.notes?.some((n) => n.startsWith('CHECK')) ? ' (' + r.notes.join('; ') + ')' : ''}`);
    return r;
  }

  private async session(f: AdapterFactory, mode: Mode, rep: number, position: number, tag: string): Promise<RunRecord> {
    const c = this.c;
    const d = this.data;
    const has = (w: WorkloadName): boolean => c.workloads.has(w);
    const rec: RunRecord = { rep, store: f.store, mode, position, workloads: [] };
    const dirs: string[] = [];
    let open: StoreAdapter | null = null;
    const push = (r: WorkloadResult): void => void rec.workloads.push(r);
    try {
      // 1. load in key order, on its own data set
      if (has('load-seq')) {
        const dir = this.freshDir(f.store, mode, 'seq');
        dirs.push(dir);
        const a = f.create(mode, dir);
        this.record(a);
        await a.open();
        open = a;
        const batches = W.makeBatches(d.keys(a.keyKind), d.values, null, c.batch);
        push(await this.measure('load-seq', tag, (r) => W.load(a, batches, r)));
        await a.close();
        open = null;
        rmSync(dir, { recursive: true, force: true });
      }

      // 2. the main data set: random-order load, then reads, overwrite, space, small puts
      const needMain = (['load-rand', 'get', 'scan', 'seek', 'overwrite', 'space', 'small-put'] as const).some(has);
      if (needMain) {
        const dir = this.freshDir(f.store, mode, 'main');
        dirs.push(dir);
        let a = f.create(mode, dir);
        this.record(a);
        await a.open();
        open = a;
        const keys = d.keys(a.keyKind);
        const devStat = blockStatFile(dir);
        syncFs(dir);
        const dev0 = deviceWrittenBytes(devStat);
        const io0 = readIo();
        const loadBatches = W.makeBatches(keys, d.values, d.loadOrder, c.batch);
        let userWritten = W.userBytes(loadBatches);
        const loadRes = await this.measure('load-rand', tag, (r) => W.load(a, loadBatches, r));
        if (has('load-rand')) push(loadRes);

        if (has('get')) {
          push(
            await this.measure('get', tag, async (r) => {
              W.syncGets(a, keys, d.getIdx, d.getSampleIdx, r, 'sync_', c.rawSamples);
              await W.asyncGets(a, keys, d.asyncIdx, r, 'async_', c.rawSamples);
            }),
          );
        }
        if (has('scan')) push(await this.measure('scan', tag, (r) => W.scan(a, c.keys, r)));
        if (has('seek')) push(await this.measure('seek', tag, (r) => W.seeks(a, keys, d.seekIdx, c.seekLen, r, c.rawSamples)));
        if (has('overwrite') || has('space')) {
          const owBatches = W.makeBatches(keys, d.overwriteValues, d.overwriteOrder, c.batch, d.overwriteOrder.length, true);
          userWritten += W.userBytes(owBatches);
          const ow = await this.measure('overwrite', tag, (r) => W.load(a, owBatches, r));
          if (has('overwrite')) push(ow);
        }
        let stats: unknown;
        if (a.stats) stats = a.stats();
        await a.close();
        open = null;

        if (has('space')) {
          push(
            await this.measure('space', tag, async (r) => {
              const io = ioDelta(io0, readIo());
              syncFs(dir);
              const devWritten = deviceWrittenBytes(devStat) - dev0;
              const live = c.keys * (keys[0] as Key).length + c.keys * c.valueSize;
              const before = dirSize(dir);
              r.metrics.user_bytes = live;
              r.metrics.user_bytes_written = userWritten;
              r.metrics.alloc_bytes = before.allocated;
              r.metrics.apparent_bytes = before.apparent;
              r.metrics.files = before.files;
              r.metrics.amp = before.allocated / live;
              r.metrics.amp_apparent = before.apparent / live;
              if (io) {
                r.metrics.write_bytes = io.writeBytes;
                r.metrics.cancelled_write_bytes = io.cancelledWriteBytes;
                r.metrics.wchar = io.wchar;
                r.metrics.wa_block = (io.writeBytes - io.cancelledWriteBytes) / userWritten;
                r.metrics.wa_block_gross = io.writeBytes / userWritten;
                r.metrics.wa_wchar = io.wchar / userWritten;
              }
              if (Number.isFinite(devWritten)) {
                r.metrics.device_write_bytes = devWritten;
                r.metrics.wa_device = devWritten / userWritten;
              }
              if (stats !== undefined) (r.notes ??= []).push(`store stats: ${safeJson(stats)}`);
              if (a.compact) {
                a = f.create(mode, dir);
                await a.open();
                open = a;
                const t0 = process.hrtime.bigint();
                try {
                  await a.compact!();
                  r.metrics.compact_seconds = Number(process.hrtime.bigint() - t0) / 1e9;
                } finally {
                  await a.close();
                  open = null;
                }
                const after = dirSize(dir);
                r.metrics.alloc_after_bytes = after.allocated;
                r.metrics.apparent_after_bytes = after.apparent;
                r.metrics.amp_after = after.allocated / live;
                r.metrics.amp_after_apparent = after.apparent / live;
              } else {
                (r.notes ??= []).push(`no compaction: ${a.compactLabel}`);
              }
            }),
          );
        }

        if (has('small-put') && c.smallPuts > 0) {
          a = f.create(mode, dir);
          await a.open();
          open = a;
          const entries: W.Entry[] = [];
          for (let i = 0; i < d.smallIdx.length; i++) entries.push([keys[d.smallIdx[i] as number] as Key, d.smallValues[i] as Buffer]);
          push(await this.measure('small-put', tag, (r) => W.smallPuts(a, entries, r, c.rawSamples)));
          await a.close();
          open = null;
        }
        rmSync(dir, { recursive: true, force: true });
      }

      // 3. big values on their own data set
      if (has('big-values') && c.bigTotalBytes > 0) {
        const dir = this.freshDir(f.store, mode, 'big');
        dirs.push(dir);
        const a = f.create(mode, dir);
        this.record(a);
        await a.open();
        open = a;
        const count = Math.max(1, Math.floor(c.bigTotalBytes / c.bigValueSize));
        const perBatch = Math.max(1, Math.min(c.batch, Math.floor(c.bigBatchBytes / c.bigValueSize)));
        const pool = new BigValuePool(c.bigValueSize, c.seed);
        const bigKeys = prepareKeys(Array.from({ length: count }, (_, i) => 'big:' + String(i).padStart(9, '0')), a.keyKind);
        const values = Array.from({ length: count }, () => pool.next());
        const batches = W.makeBatches(bigKeys, values, null, perBatch);
        push(
          await this.measure('big-values', tag, async (r) => {
            await W.load(a, batches, r);
            r.metrics.batch_entries = perBatch;
            await a.close();
            open = null;
            const sz = dirSize(dir);
            r.metrics.alloc_bytes = sz.allocated;
            r.metrics.amp = sz.allocated / (r.metrics.user_bytes as number);
          }),
        );
        rmSync(dir, { recursive: true, force: true });
      }

      // 4. long keys on their own data set
      if (has('long-keys') && c.longKeys > 0) {
        const dir = this.freshDir(f.store, mode, 'long');
        dirs.push(dir);
        const a = f.create(mode, dir);
        this.record(a);
        await a.open();
        open = a;
        const lk = d.longKeys(a.keyKind);
        const batches = W.makeBatches(lk, d.longValues, null, c.batch);
        push(
          await this.measure('long-keys', tag, async (r) => {
            await W.load(a, batches, r, 'load_');
            W.syncGets(a, lk, d.longGetIdx, d.longGetIdx.subarray(0, Math.min(d.longGetIdx.length, c.getSample)), r, 'get_', c.rawSamples);
            await W.scan(a, lk.length, r, 'scan_');
            await a.close();
            open = null;
            const sz = dirSize(dir);
            r.metrics.alloc_bytes = sz.allocated;
            r.metrics.amp = sz.allocated / (r.metrics.load_user_bytes as number);
          }),
        );
        rmSync(dir, { recursive: true, force: true });
      }
    } catch (e) {
      rec.error = (e as Error).stack ?? String(e);
      this.log(`${tag} FAILED: ${(e as Error).message}`);
      if (open) {
        try {
          await (open as StoreAdapter).close();
        } catch {
          /* already broken */
        }
      }
    } finally {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
    return rec;
  }
}

function rotate<T>(arr: readonly T[], k: number): T[] {
  const n = arr.length;
  if (n === 0) return [];
  const s = k % n;
  return [...arr.slice(s), ...arr.slice(0, s)];
}

function safeJson(x: unknown): string {
  try {
    return JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  } catch {
    return String(x);
  }
}
