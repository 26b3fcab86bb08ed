// The workloads. Each function runs one workload on an open adapter, times only its core loop,
// and writes plain numbers into `r.metrics` (ops/s, µs, bytes, MB/s, ratios).
import type { Key, StoreAdapter, WorkloadResult } from './types.js';
import { summarizeNs } from './stats.js';

export type Entry = readonly [Key, Buffer];

const now = (): bigint => process.hrtime.bigint();
const secondsSince = (t0: bigint): number => Number(now() - t0) / 1e9;

/** Split (keys[idx[i]], values[i or idx[i]]) into batches of `batch` entries. */
export function makeBatches(
  keys: readonly Key[],
  values: readonly Buffer[],
  order: ArrayLike<number> | null,
  batch: number,
  count = order ? order.length : keys.length,
  valueByPosition = false,
): Entry[][] {
  const out: Entry[][] = [];
  for (let start = 0; start < count; start += batch) {
    const end = Math.min(count, start + batch);
    const b = new Array<Entry>(end - start);
    for (let i = start; i < end; i++) {
      const k = order ? (order[i] as number) : i;
      b[i - start] = [keys[k] as Key, values[valueByPosition ? i : k] as Buffer];
    }
    out.push(b);
  }
  return out;
}

export function userBytes(batches: readonly Entry[][]): number {
  let n = 0;
  for (const b of batches) for (const [k, v] of b) n += k.length + v.length;
  return n;
}

/** Durable batched load; metrics: ops, mbps, seconds. */
export async function load(a: StoreAdapter, batches: readonly Entry[][], r: WorkloadResult, prefix = ''): Promise<void> {
  let entries = 0;
  for (const b of batches) entries += b.length;
  const bytes = userBytes(batches);
  const t0 = now();
  for (const b of batches) await a.putBatch(b);
  const s = secondsSince(t0);
  r.metrics[prefix + 'ops'] = entries / s;
  r.metrics[prefix + 'mbps'] = bytes / 1e6 / s;
  r.metrics[prefix + 'seconds'] = s;
  r.metrics[prefix + 'user_bytes'] = bytes;
}

function keepSamples(r: WorkloadResult, name: string, samples: Float64Array, raw: boolean): void {
  (r.latency ??= {})[name] = summarizeNs(samples);
  if (raw) (r.samples ??= {})[name] = Array.from(samples);
}

function check(r: WorkloadResult, ok: boolean, msg: string): void {
  if (!ok) (r.notes ??= []).push(`CHECK FAILED: ${msg}`);
}

/** Sync gets: throughput over `idx`, then per-call latency over `sampleIdx`. */
export function syncGets(
  a: StoreAdapter,
  keys: readonly Key[],
  idx: Uint32Array,
  sampleIdx: Uint32Array,
  r: WorkloadResult,
  prefix: string,
  raw: boolean,
): void {
  const get = a.get;
  if (!get) {
    (r.notes ??= []).push(`${prefix}: no synchronous get (N/A)`);
    return;
  }
  // Warm-up over the latency sample's keys (untimed).
  for (let i = 0; i < sampleIdx.length; i++) get(keys[sampleIdx[i] as number] as Key);
  let found = 0;
  const t0 = now();
  for (let i = 0; i < idx.length; i++) {
    if (get(keys[idx[i] as number] as Key) !== undefined) found++;
  }
  const s = secondsSince(t0);
  r.metrics[prefix + 'ops'] = idx.length / s;
  check(r, found === idx.length, `${prefix}: found ${found} of ${idx.length}`);
  const lat = new Float64Array(sampleIdx.length);
  for (let i = 0; i < sampleIdx.length; i++) {
    const k = keys[sampleIdx[i] as number] as Key;
    const t = now();
    get(k);
    lat[i] = Number(now() - t);
  }
  keepSamples(r, prefix.replace(/_$/, ''), lat, raw);
  const sum = r.latency?.[prefix.replace(/_$/, '')];
  if (sum) {
    r.metrics[prefix + 'p50_us'] = sum.p50Ns / 1e3;
    r.metrics[prefix + 'p99_us'] = sum.p99Ns / 1e3;
  }
}

/** Awaited async gets, one at a time, each timed. */
export async function asyncGets(
  a: StoreAdapter,
  keys: readonly Key[],
  idx: Uint32Array,
  r: WorkloadResult,
  prefix: string,
  raw: boolean,
): Promise<void> {
  const getAsync = a.getAsync;
  if (!getAsync) {
    (r.notes ??= []).push(`${prefix}: no async get (N/A)`);
    return;
  }
  const lat = new Float64Array(idx.length);
  let found = 0;
  const t0 = now();
  for (let i = 0; i < idx.length; i++) {
    const k = keys[idx[i] as number] as Key;
    const t = now();
    const v = await getAsync(k);
    lat[i] = Number(now() - t);
    if (v !== undefined) found++;
  }
  const s = secondsSince(t0);
  r.metrics[prefix + 'ops'] = idx.length / s;
  check(r, found === idx.length, `${prefix}: found ${found} of ${idx.length}`);
  keepSamples(r, prefix.replace(/_$/, ''), lat, raw);
  const sum = r.latency?.[prefix.replace(/_$/, '')];
  if (sum) {
    r.metrics[prefix + 'p50_us'] = sum.p50Ns / 1e3;
    r.metrics[prefix + 'p99_us'] = sum.p99Ns / 1e3;
  }
}

export async function scan(a: StoreAdapter, expected: number, r: WorkloadResult, prefix = ''): Promise<void> {
  const t0 = now();
  const res = a.scan();
  const n = typeof res === 'number' ? res : await res;
  const s = secondsSince(t0);
  r.metrics[prefix + 'ops'] = n / s;
  r.metrics[prefix + 'seconds'] = s;
  check(r, n === expected, `${prefix || 'scan'}: scanned ${n}, expected ${expected}`);
}

export async function seeks(
  a: StoreAdapter,
  keys: readonly Key[],
  idx: Uint32Array,
  len: number,
  r: WorkloadResult,
  raw: boolean,
): Promise<void> {
  const lat = new Float64Array(idx.length);
  let read = 0;
  const t0 = now();
  for (let i = 0; i < idx.length; i++) {
    const k = keys[idx[i] as number] as Key;
    const t = now();
    const res = a.seek(k, len);
    read += typeof res === 'number' ? res : await res;
    lat[i] = Number(now() - t);
  }
  const s = secondsSince(t0);
  r.metrics.ops = idx.length / s;
  r.metrics.entries_read = read;
  check(r, read > 0, 'seek: read nothing');
  keepSamples(r, 'seek', lat, raw);
  const sum = r.latency?.seek;
  if (sum) {
    r.metrics.p50_us = sum.p50Ns / 1e3;
    r.metrics.p99_us = sum.p99Ns / 1e3;
  }
}

/** One put + commit at a time, each timed. */
export async function smallPuts(a: StoreAdapter, entries: readonly Entry[], r: WorkloadResult, raw: boolean): Promise<void> {
  const lat = new Float64Array(entries.length);
  const t0 = now();
  for (let i = 0; i < entries.length; i++) {
    const [k, v] = entries[i] as Entry;
    const t = now();
    await a.putOne(k, v);
    lat[i] = Number(now() - t);
  }
  const s = secondsSince(t0);
  r.metrics.ops = entries.length / s;
  keepSamples(r, 'small_put', lat, raw);
  const sum = r.latency?.small_put;
  if (sum) {
    r.metrics.p50_us = sum.p50Ns / 1e3;
    r.metrics.p99_us = sum.p99Ns / 1e3;
  }
}
