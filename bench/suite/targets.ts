// ForestFS's performance targets, in one table. Each compares a ForestFS median (durable mode)
// with a peer's median in the same mode, with a device floor from the same run, or with an
// absolute bound. They are reported (PASS/SHORT) once ForestFS takes part; they never fail a run.

/** Metric ids are `<workload>.<metric>` as produced by the runner (see report.ts METRICS). */
export type TargetRef =
  | { kind: 'peer'; store: string }
  | { kind: 'floor'; floor: 'commit_p50_us' | 'bw_mbps' }
  | { kind: 'absolute' };

export interface Target {
  id: string;
  description: string;
  metric: string;
  mode: 'durable' | 'nosync';
  ref: TargetRef;
  /** '>=': ForestFS / ref must be at least `factor`; '<=': at most `factor`. */
  op: '>=' | '<=';
  factor: number;
}

export const TARGETS: readonly Target[] = [
  { id: 'load-seq-vs-lmdb', description: 'durable load, key order', metric: 'load-seq.ops', mode: 'durable', ref: { kind: 'peer', store: 'lmdb' }, op: '>=', factor: 1.5 },
  { id: 'load-rand-vs-lmdb', description: 'durable load, random order', metric: 'load-rand.ops', mode: 'durable', ref: { kind: 'peer', store: 'lmdb' }, op: '>=', factor: 5 },
  { id: 'load-rand-vs-level', description: 'durable load, random order', metric: 'load-rand.ops', mode: 'durable', ref: { kind: 'peer', store: 'classic-level' }, op: '>=', factor: 1.5 },
  { id: 'get-vs-lmdb', description: 'random sync get', metric: 'get.sync_ops', mode: 'durable', ref: { kind: 'peer', store: 'lmdb' }, op: '>=', factor: 1.0 },
  { id: 'scan-vs-lmdb', description: 'full ordered scan', metric: 'scan.ops', mode: 'durable', ref: { kind: 'peer', store: 'lmdb' }, op: '>=', factor: 1.0 },
  { id: 'seek-vs-lmdb', description: 'seek + read 10', metric: 'seek.ops', mode: 'durable', ref: { kind: 'peer', store: 'lmdb' }, op: '>=', factor: 1.0 },
  { id: 'small-put-vs-floor', description: 'durable small put p50', metric: 'small-put.p50_us', mode: 'durable', ref: { kind: 'floor', floor: 'commit_p50_us' }, op: '<=', factor: 1.2 },
  { id: 'big-values-vs-floor', description: '64 KiB values MB/s', metric: 'big-values.mbps', mode: 'durable', ref: { kind: 'floor', floor: 'bw_mbps' }, op: '>=', factor: 0.8 },
  { id: 'long-load-vs-lmdb', description: 'long keys: durable load', metric: 'long-keys.load_ops', mode: 'durable', ref: { kind: 'peer', store: 'lmdb' }, op: '>=', factor: 2 },
  { id: 'long-get-vs-lmdb', description: 'long keys: random get', metric: 'long-keys.get_ops', mode: 'durable', ref: { kind: 'peer', store: 'lmdb' }, op: '>=', factor: 1.0 },
  { id: 'space-after-compaction', description: 'space after compaction / user bytes', metric: 'space.amp_after', mode: 'durable', ref: { kind: 'absolute' }, op: '<=', factor: 1.15 },
  { id: 'write-amplification', description: 'write amplification (block layer)', metric: 'space.wa_block', mode: 'durable', ref: { kind: 'absolute' }, op: '<=', factor: 2 },
];

export interface TargetResult {
  target: Target;
  /** ForestFS / reference (or the absolute value). */
  measured: number | null;
  status: 'PASS' | 'SHORT' | 'pending' | 'n/a';
  detail: string;
}

export function describeTarget(t: Target): string {
  const rhs =
    t.ref.kind === 'peer' ? `${t.factor}× ${t.ref.store}` : t.ref.kind === 'floor' ? `${t.factor}× ${t.ref.floor === 'bw_mbps' ? 'bandwidth floor' : 'commit floor p50'}` : `${t.factor}`;
  return `${t.description} ${t.op === '>=' ? '≥' : '≤'} ${rhs}`;
}

/**
 * Evaluate every target. `median(store, mode, metric)` returns a median or NaN; `floor(name)`
 * returns a floor median or NaN. `present` is whether ForestFS ran.
 */
export function evaluateTargets(
  present: boolean,
  median: (store: string, mode: string, metric: string) => number,
  floor: (name: 'commit_p50_us' | 'bw_mbps') => number,
): TargetResult[] {
  return TARGETS.map((t) => {
    if (!present) return { target: t, measured: null, status: 'pending', detail: 'ForestFS not built yet' };
    const mine = median('forestfs', t.mode, t.metric);
    let ref = 1;
    if (t.ref.kind === 'peer') ref = median(t.ref.store, t.mode, t.metric);
    else if (t.ref.kind === 'floor') ref = floor(t.ref.floor);
    if (!Number.isFinite(mine) || !Number.isFinite(ref) || ref === 0) {
      return { target: t, measured: null, status: 'n/a', detail: 'not measured in this run' };
    }
    const ratio = mine / ref;
    const ok = t.op === '>=' ? ratio >= t.factor : ratio <= t.factor;
    return { target: t, measured: ratio, status: ok ? 'PASS' : 'SHORT', detail: `${mine.toPrecision(4)} / ${ref.toPrecision(4)}` };
  });
}
