// Turns raw results into medians, ratios and target verdicts, and renders them as text (stdout)
// and markdown (bench/results/table.md). Used by run.ts and by chart.ts (from the JSON alone).
import type { FloorResult } from './floors.js';
import type { MachineInfo } from './sysinfo.js';
import { median, spread } from './stats.js';
import { evaluateTargets, describeTarget, type TargetResult } from './targets.js';
import type { Mode, RunRecord } from './types.js';

export interface AdapterInfo {
  store: string;
  mode: Mode;
  settings: Record<string, unknown>;
  notes: readonly string[];
  compactLabel: string;
}

/** The JSON document written by --json (and read by chart.ts). */
export interface BenchDoc {
  schema: 'forestfs-bench/1';
  command: string;
  argv: string[];
  startedAt: string;
  finishedAt: string;
  wallSeconds: number;
  machine: MachineInfo;
  packages: Record<string, string>;
  settings: Record<string, unknown>;
  forestfs: { present: boolean; skipped: string | null };
  floorMethod: string;
  adapters: AdapterInfo[];
  floors: FloorResult[];
  runs: RunRecord[];
  summary?: Summary;
}

export type Unit = 'ops/s' | 'µs' | 'MB/s' | '×' | 'MiB' | 's';

export interface MetricDef {
  id: string;
  label: string;
  unit: Unit;
  better: 'higher' | 'lower' | 'none';
  /** Multiply the stored value by this for display (bytes -> MiB). */
  scale?: number;
  /** Throughput shown on the chart. */
  chart?: boolean;
}

const MiB = 1024 * 1024;

export const METRICS: readonly MetricDef[] = [
  { id: 'load-seq.ops', label: 'load, key order (batches)', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'load-rand.ops', label: 'load, random order (batches)', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'get.sync_ops', label: 'random get, sync', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'get.sync_p50_us', label: '  sync get p50', unit: 'µs', better: 'lower' },
  { id: 'get.sync_p99_us', label: '  sync get p99', unit: 'µs', better: 'lower' },
  { id: 'get.async_ops', label: 'random get, awaited async', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'get.async_p50_us', label: '  async get p50', unit: 'µs', better: 'lower' },
  { id: 'get.async_p99_us', label: '  async get p99', unit: 'µs', better: 'lower' },
  { id: 'scan.ops', label: 'full ordered scan', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'seek.ops', label: 'seek + read 10', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'seek.p50_us', label: '  seek + read 10 p50', unit: 'µs', better: 'lower' },
  { id: 'seek.p99_us', label: '  seek + read 10 p99', unit: 'µs', better: 'lower' },
  { id: 'overwrite.ops', label: 'overwrite half (batches)', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'small-put.ops', label: 'small put + commit', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'small-put.p50_us', label: '  small put p50', unit: 'µs', better: 'lower' },
  { id: 'small-put.p99_us', label: '  small put p99', unit: 'µs', better: 'lower' },
  { id: 'big-values.mbps', label: '64 KiB values', unit: 'MB/s', better: 'higher', chart: true },
  { id: 'long-keys.load_ops', label: 'long keys: load (batches)', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'long-keys.get_ops', label: 'long keys: random get', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'long-keys.get_p50_us', label: '  long-key get p50', unit: 'µs', better: 'lower' },
  { id: 'long-keys.get_p99_us', label: '  long-key get p99', unit: 'µs', better: 'lower' },
  { id: 'long-keys.scan_ops', label: 'long keys: scan', unit: 'ops/s', better: 'higher', chart: true },
  { id: 'space.user_bytes', label: 'live user bytes', unit: 'MiB', better: 'none', scale: 1 / MiB },
  { id: 'space.alloc_bytes', label: 'on device after overwrite (allocated)', unit: 'MiB', better: 'lower', scale: 1 / MiB },
  { id: 'space.apparent_bytes', label: '  apparent size', unit: 'MiB', better: 'none', scale: 1 / MiB },
  { id: 'space.amp', label: 'space amplification', unit: '×', better: 'lower' },
  { id: 'space.compact_seconds', label: 'compaction time', unit: 's', better: 'lower' },
  { id: 'space.alloc_after_bytes', label: 'on device after compaction', unit: 'MiB', better: 'lower', scale: 1 / MiB },
  { id: 'space.amp_after', label: 'space amp after compaction', unit: '×', better: 'lower' },
  { id: 'space.wa_block', label: 'write amp (block layer, net)', unit: '×', better: 'lower' },
  { id: 'space.wa_wchar', label: 'write amp (wchar)', unit: '×', better: 'lower' },
  { id: 'space.wa_device', label: 'write amp (device-wide, after syncfs)', unit: '×', better: 'lower' },
  { id: 'big-values.amp', label: '64 KiB values: space amp', unit: '×', better: 'lower' },
  { id: 'long-keys.amp', label: 'long keys: space amp', unit: '×', better: 'lower' },
];

export const MEMORY_WORKLOADS = ['load-seq', 'load-rand', 'get', 'scan', 'seek', 'overwrite', 'small-put', 'big-values', 'long-keys'] as const;

export const STORE_ORDER = ['forestfs', 'lmdb', 'classic-level', 'better-sqlite3'];

export interface Config2 {
  store: string;
  mode: Mode;
}

export interface FloorMedians {
  commit_p50_us: number;
  commit_p99_us: number;
  bw_mbps: number;
  commit_p50_us_reps: number[];
  commit_p99_us_reps: number[];
  bw_mbps_reps: number[];
}

export interface Summary {
  configs: Config2[];
  /** `${store}/${mode}` -> metric id -> value per repetition. */
  values: Record<string, Record<string, number[]>>;
  medians: Record<string, Record<string, number>>;
  floors: FloorMedians;
  /** Ratio pairs shown in the report: subject ÷ reference, same mode. */
  pairs: { mode: Mode; subject: string; reference: string }[];
  targets: TargetResult[];
  errors: string[];
  checks: string[];
}

export const cfgKey = (store: string, mode: string): string => `${store}/${mode}`;

export function summarize(doc: BenchDoc): Summary {
  const values: Summary['values'] = {};
  const errors: string[] = [];
  const checks: string[] = [];
  const seen = new Map<string, Config2>();
  for (const run of doc.runs) {
    const key = cfgKey(run.store, run.mode);
    seen.set(key, { store: run.store, mode: run.mode });
    const v = (values[key] ??= {});
    if (run.error) errors.push(`${key} rep ${run.rep + 1}: ${run.error.split('\n')[0]}`);
    for (const w of run.workloads) {
      for (const [m, x] of Object.entries(w.metrics)) (v[`${w.workload}.${m}`] ??= []).push(x);
      for (const n of w.notes ?? []) if (n.startsWith('CHECK')) checks.push(`${key} rep ${run.rep + 1}: ${n}`);
      if (w.error) errors.push(`${key} rep ${run.rep + 1} ${w.workload}: ${w.error.split('\n')[0]}`);
    }
  }
  const configs = [...seen.values()].sort(
    (a, b) => STORE_ORDER.indexOf(a.store) - STORE_ORDER.indexOf(b.store) || (a.mode === b.mode ? 0 : a.mode === 'durable' ? -1 : 1),
  );
  const medians: Summary['medians'] = {};
  for (const [k, mv] of Object.entries(values)) {
    const out: Record<string, number> = {};
    for (const [m, xs] of Object.entries(mv)) out[m] = median(xs);
    medians[k] = out;
  }
  const c50: number[] = [];
  const c99: number[] = [];
  const bw: number[] = [];
  for (const f of doc.floors) {
    if ('latency' in f.commit) {
      c50.push(f.commit.latency.p50Ns / 1e3);
      c99.push(f.commit.latency.p99Ns / 1e3);
    }
    if ('mbPerSec' in f.bandwidth) bw.push(f.bandwidth.mbPerSec);
  }
  const floors: FloorMedians = {
    commit_p50_us: median(c50),
    commit_p99_us: median(c99),
    bw_mbps: median(bw),
    commit_p50_us_reps: c50,
    commit_p99_us_reps: c99,
    bw_mbps_reps: bw,
  };
  const stores = [...new Set(configs.map((c) => c.store))];
  const modes = [...new Set(configs.map((c) => c.mode))];
  const pairs: Summary['pairs'] = [];
  for (const mode of modes) {
    if (stores.includes('forestfs')) {
      for (const s of stores) if (s !== 'forestfs') pairs.push({ mode, subject: 'forestfs', reference: s });
    } else {
      const ref = stores.includes('lmdb') ? 'lmdb' : stores[0];
      if (ref) for (const s of stores) if (s !== ref) pairs.push({ mode, subject: s, reference: ref });
    }
  }
  const med = (store: string, mode: string, metric: string): number => medians[cfgKey(store, mode)]?.[metric] ?? NaN;
  const targets = evaluateTargets(stores.includes('forestfs'), med, (n) => floors[n]);
  return { configs, values, medians, floors, pairs, targets, errors, checks };
}

// ---------------------------------------------------------------- formatting

export function fmt(v: number | undefined, unit: Unit): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  switch (unit) {
    case 'ops/s':
      return v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : v >= 1e3 ? `${(v / 1e3).toFixed(1)}k` : v.toFixed(0);
    case 'µs':
      return v >= 1000 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
    case 'MB/s':
      return v.toFixed(0);
    case '×':
      return v >= 100 ? v.toFixed(0) : v.toFixed(2);
    case 'MiB':
      return v >= 100 ? v.toFixed(0) : v.toFixed(1);
    case 's':
      return v.toFixed(2);
  }
}

export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return '—';
  return r >= 100 ? `${r.toFixed(0)}×` : r >= 10 ? `${r.toFixed(1)}×` : `${r.toFixed(2)}×`;
}

function table(rows: string[][], align: ('l' | 'r')[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows
    .map((r, ri) => {
      const line = r.map((c, i) => (align[i] === 'r' ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ');
      return ri === 0 ? `${line}\n${widths.map((w) => '-'.repeat(w)).join('  ')}` : line;
    })
    .join('\n');
}

function mdTable(rows: string[][], align: ('l' | 'r')[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/^ +/, (m) => '&nbsp;'.repeat(m.length));
  const [head, ...body] = rows;
  return [
    `| ${(head ?? []).map(esc).join(' | ')} |`,
    `|${align.map((a) => (a === 'r' ? '---:' : ':---')).join('|')}|`,
    ...body.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

function label(doc: BenchDoc, m: MetricDef): string {
  const seekLen = Number(doc.settings.seekLen ?? 10);
  return m.label.replace('read 10', `read ${seekLen}`);
}

interface Sections {
  header: string[];
  floors: string[][];
  medians: { mode: Mode; rows: string[][] }[];
  ratios: { mode: Mode; rows: string[][] }[];
  vsFloor: string[][];
  memory: { mode: Mode; rows: string[][] }[];
  targets: string[][];
  notes: string[];
}

function build(doc: BenchDoc, s: Summary): Sections {
  const header = [
    `machine: ${doc.machine.cpuModel}, ${doc.machine.cores} cores, ${(doc.machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB, Linux ${doc.machine.kernel}, Node ${doc.machine.node}; scratch on ${doc.machine.tmpFs}`,
    `load average (1/5/15 min): at start ${fmtLoad(doc.machine.loadAvgStart)}, at end ${fmtLoad(doc.machine.loadAvgEnd)} (other work on the machine skews results)`,
    `packages: ${Object.entries(doc.packages).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `settings: ${Object.entries(doc.settings)
      .filter(([k]) => ['keys', 'reps', 'batch', 'valueSize', 'bigValueSize', 'bigTotalBytes', 'longKeys', 'seed'].includes(k))
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(' ')}`,
    `ForestFS: ${doc.forestfs.present ? 'present' : (doc.forestfs.skipped ?? 'absent')}`,
  ];
  const reps = s.floors.commit_p50_us_reps.length;
  const spr = (xs: number[]): string => (xs.length > 1 && Number.isFinite(spread(xs)) ? ` ±${(spread(xs) * 50).toFixed(0)}%` : '');
  const floors: string[][] = [
    ['floor', 'median', 'per repetition', 'method'],
    ['commit p50 (µs)', fmt(s.floors.commit_p50_us, 'µs') + spr(s.floors.commit_p50_us_reps), s.floors.commit_p50_us_reps.map((x) => fmt(x, 'µs')).join(' '), firstMethod(doc, 'commit')],
    ['commit p99 (µs)', fmt(s.floors.commit_p99_us, 'µs') + spr(s.floors.commit_p99_us_reps), s.floors.commit_p99_us_reps.map((x) => fmt(x, 'µs')).join(' '), ''],
    ['bandwidth (MB/s)', fmt(s.floors.bw_mbps, 'MB/s') + spr(s.floors.bw_mbps_reps), s.floors.bw_mbps_reps.map((x) => fmt(x, 'MB/s')).join(' '), firstMethod(doc, 'bandwidth')],
  ];
  void reps;
  const modes = [...new Set(s.configs.map((c) => c.mode))];
  const medians = modes.map((mode) => {
    const cfgs = s.configs.filter((c) => c.mode === mode);
    const rows: string[][] = [['metric', 'unit', ...cfgs.map((c) => c.store)]];
    for (const m of METRICS) {
      const vals = cfgs.map((c) => s.medians[cfgKey(c.store, c.mode)]?.[m.id]);
      if (vals.every((v) => v === undefined)) continue;
      rows.push([
        label(doc, m),
        m.unit,
        ...cfgs.map((c) => {
          const xs = s.values[cfgKey(c.store, c.mode)]?.[m.id] ?? [];
          const v = s.medians[cfgKey(c.store, c.mode)]?.[m.id];
          const sc = m.scale ?? 1;
          return v === undefined ? 'N/A' : fmt(v * sc, m.unit) + spr(xs);
        }),
      ]);
    }
    return { mode, rows };
  });
  const ratios = modes.map((mode) => {
    const pairs = s.pairs.filter((p) => p.mode === mode);
    const rows: string[][] = [['metric', 'better', ...pairs.map((p) => `${p.subject} ÷ ${p.reference}`)]];
    for (const m of METRICS) {
      if (m.better === 'none') continue;
      const cells = pairs.map((p) => {
        const a = s.medians[cfgKey(p.subject, mode)]?.[m.id];
        const b = s.medians[cfgKey(p.reference, mode)]?.[m.id];
        return a === undefined || b === undefined || b === 0 ? '—' : fmtRatio(a / b);
      });
      if (cells.every((c) => c === '—')) continue;
      rows.push([label(doc, m), m.better === 'higher' ? 'higher' : 'lower', ...cells]);
    }
    return { mode, rows };
  });
  const vsFloor: string[][] = [['store/mode', 'small put p50 ÷ commit floor p50', 'small put p99 ÷ commit floor p99', '64 KiB MB/s ÷ bandwidth floor']];
  for (const c of s.configs) {
    const m = s.medians[cfgKey(c.store, c.mode)] ?? {};
    vsFloor.push([
      cfgKey(c.store, c.mode),
      fmtRatio((m['small-put.p50_us'] ?? NaN) / s.floors.commit_p50_us),
      fmtRatio((m['small-put.p99_us'] ?? NaN) / s.floors.commit_p99_us),
      fmtRatio((m['big-values.mbps'] ?? NaN) / s.floors.bw_mbps),
    ]);
  }
  const memory = modes.map((mode) => {
    const cfgs = s.configs.filter((c) => c.mode === mode);
    const rows: string[][] = [['peak RSS MiB (+ over start) during', ...cfgs.map((c) => c.store)]];
    for (const w of MEMORY_WORKLOADS) {
      const med = cfgs.map((c) => s.medians[cfgKey(c.store, c.mode)]);
      if (med.every((m) => m?.[`${w}.rss_peak_mib`] === undefined)) continue;
      rows.push([
        w,
        ...med.map((m) => {
          const peak = m?.[`${w}.rss_peak_mib`];
          const start = m?.[`${w}.rss_start_mib`];
          if (peak === undefined) return 'N/A';
          return start === undefined ? fmt(peak, 'MiB') : `${peak.toFixed(0)} (+${Math.max(0, peak - start).toFixed(0)})`;
        }),
      ]);
    }
    return { mode, rows };
  });
  const targets: string[][] = [['target (ForestFS, durable)', 'measured', 'status']];
  for (const t of s.targets) targets.push([describeTarget(t.target), t.measured === null ? '—' : fmtRatio(t.measured), t.status === 'pending' ? 'pending (ForestFS absent)' : t.status]);

  const notes: string[] = [];
  for (const a of doc.adapters) {
    if (a.mode !== doc.adapters.find((x) => x.store === a.store)?.mode) continue;
    for (const n of a.notes) notes.push(n);
    notes.push(`${a.store}: compaction = ${a.compactLabel}`);
  }
  notes.push(
    'Ratios are ratios of medians across repetitions (same mode). "higher"/"lower" says which direction is better. ±x% is half the (max−min)/median spread across repetitions.',
    'Space: allocated = Σ st_blocks×512 over the store directory after close; apparent = Σ st_size.',
    'Write amp, over load-rand → overwrite → close, ÷ user bytes written (keys + values): "block layer" = /proc/self/io write_bytes − cancelled_write_bytes; "wchar" = bytes passed to write(); "device-wide" = sectors written on the scratch device (/sys/dev/block/…/stat) between a syncfs before and a syncfs after — includes the file-system journal and any other process writing to that device.',
    'CAVEAT: write_bytes is charged when a page-cache folio becomes dirty, for the whole folio. With large folios (ext4 on recent kernels, e.g. 6.18 here) a 4 KiB in-place write into a file written earlier in big chunks can be charged up to 2 MiB, so buffered in-place writers (lmdb, SQLite) get hugely inflated "block layer" figures; compare with the device-wide figure. O_DIRECT writes are charged exactly. A page dirtied twice before write-back is charged once, which flatters no-sync modes.',
    'Peak RSS: VmHWM, reset through /proc/self/clear_refs ("5") before each workload; "+N" is the peak minus the RSS when the workload started. All stores share one process, so the base includes Node, the generated data set and memory earlier stores left behind (the rotation spreads that out).',
  );
  for (const e of s.errors) notes.push(`ERROR ${e}`);
  for (const c of s.checks) notes.push(c);
  return { header, floors, medians, ratios, vsFloor, memory, targets, notes };
}

function fmtLoad(l: number[] | undefined): string {
  return l ? l.map((x) => x.toFixed(2)).join(' / ') : 'unknown';
}

function firstMethod(doc: BenchDoc, which: 'commit' | 'bandwidth'): string {
  const f = doc.floors[0]?.[which];
  if (!f) return '';
  return 'error' in f ? `${f.method}: ERROR ${f.error}` : f.method;
}

export function renderText(doc: BenchDoc, s: Summary): string {
  const x = build(doc, s);
  const out: string[] = [];
  out.push('ForestFS benchmark', ...x.header, '');
  out.push('Device floors (measured in this run)', table(x.floors, ['l', 'r', 'l', 'l']), '');
  for (const m of x.medians) out.push(`Medians — ${m.mode} mode`, table(m.rows, ['l', 'l', ...m.rows[0]!.slice(2).map(() => 'r' as const)]), '');
  for (const r of x.ratios) {
    if (r.rows[0]!.length <= 2) continue;
    out.push(`Ratios — ${r.mode} mode (${s.configs.some((c) => c.store === 'forestfs') ? 'ForestFS ÷ each peer' : 'each store ÷ lmdb; ForestFS absent'})`, table(r.rows, ['l', 'l', ...r.rows[0]!.slice(2).map(() => 'r' as const)]), '');
  }
  out.push('Against the device floors', table(x.vsFloor, ['l', 'r', 'r', 'r']), '');
  for (const m of x.memory) out.push(`Peak RSS — ${m.mode} mode`, table(m.rows, ['l', ...m.rows[0]!.slice(1).map(() => 'r' as const)]), '');
  out.push('ForestFS targets', table(x.targets, ['l', 'r', 'l']), '');
  out.push('Notes', ...x.notes.map((n) => `- ${n}`));
  return out.join('\n') + '\n';
}

export function renderMarkdown(doc: BenchDoc, s: Summary, chartCommand: string): string {
  const x = build(doc, s);
  const out: string[] = [];
  out.push('# ForestFS benchmark results', '');
  out.push(`Produced by \`${doc.command}\` (${doc.wallSeconds.toFixed(0)} s wall, finished ${doc.finishedAt}), then \`${chartCommand}\`.`, '');
  out.push(...x.header.map((h) => `- ${h}`), '');
  out.push('## Device floors', '', mdTable(x.floors, ['l', 'r', 'l', 'l']), '');
  for (const m of x.medians) out.push(`## Medians — ${m.mode} mode`, '', mdTable(m.rows, ['l', 'l', ...m.rows[0]!.slice(2).map(() => 'r' as const)]), '');
  for (const r of x.ratios) {
    if (r.rows[0]!.length <= 2) continue;
    out.push(`## Ratios — ${r.mode} mode`, '', mdTable(r.rows, ['l', 'l', ...r.rows[0]!.slice(2).map(() => 'r' as const)]), '');
  }
  out.push('## Against the device floors', '', mdTable(x.vsFloor, ['l', 'r', 'r', 'r']), '');
  for (const m of x.memory) out.push(`## Peak RSS — ${m.mode} mode`, '', mdTable(m.rows, ['l', ...m.rows[0]!.slice(1).map(() => 'r' as const)]), '');
  out.push('## ForestFS targets', '', mdTable(x.targets, ['l', 'r', 'l']), '');
  out.push('## Notes', '', ...x.notes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
