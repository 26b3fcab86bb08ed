// The one interface every store in the benchmark implements, and the shapes of results.
//
// An adapter is one store in one mode. The runner creates a fresh adapter for every data set it
// builds (a fresh directory each time), calls open(), the workload's operations, then close(), and
// deletes the directory itself. Adapters never time anything: the runner does.

/** Keys are handed to an adapter in the form it declares in `keyKind` (converted before timing). */
export type Key = Buffer | string;

/** `durable`: every putBatch/putOne resolves only once the data is on stable storage.
 *  `nosync`: the store's own "do not flush" setting; writes resolve when the store says so. */
export type Mode = 'durable' | 'nosync';

export interface StoreAdapter {
  /** Store family, e.g. 'lmdb'. Same for both modes. */
  readonly store: string;
  readonly mode: Mode;
  /** Directory that holds everything this store writes (the runner creates and deletes it). */
  readonly dir: string;
  /** Whether keys are passed as Buffers or as (ASCII) strings. Every generated key is ASCII, so
   *  byte order and string order agree. */
  readonly keyKind: 'buffer' | 'string';
  /** Open (and create) the store in `dir`. */
  open(): Promise<void>;
  /** Insert/overwrite every entry as ONE atomic batch (one transaction / one commit). In
   *  `durable` mode the promise resolves only after that commit is durable. */
  putBatch(entries: ReadonlyArray<readonly [Key, Buffer]>): Promise<void>;
  /** One put as its own commit (durable in `durable` mode); resolves when committed. */
  putOne(key: Key, value: Buffer): Promise<void>;
  /** Synchronous point read; the returned bytes must stay valid after the next call.
   *  `null` when the store has no synchronous read. */
  readonly get: ((key: Key) => Uint8Array | undefined) | null;
  /** Asynchronous point read that does not block the event loop; `null` when the store has none. */
  readonly getAsync: ((key: Key) => Promise<Uint8Array | undefined>) | null;
  /** Iterate every entry in key order, touching keys and values; return how many. Sync stores
   *  return a number (no promise overhead), async ones a promise. */
  scan(): number | Promise<number>;
  /** Position at the first key >= `key` and read up to `n` entries in order; return how many. */
  seek(key: Key, n: number): number | Promise<number>;
  /** Reclaim space in place (LevelDB compactRange over everything, SQLite VACUUM, ...); `null`
   *  when the store has no in-place compaction. */
  readonly compact: (() => Promise<void>) | null;
  /** Short description of what compact() does, printed with the space-after-compaction figure. */
  readonly compactLabel: string;
  /** Flush/close; after this resolves the directory's size is final. */
  close(): Promise<void>;
  /** Optional store-reported statistics, recorded in the JSON after the main data set's workloads. */
  stats?(): unknown;
  /** Every setting that matters for the comparison, recorded in the JSON. */
  settings(): Record<string, unknown>;
  /** Notes printed under the report (e.g. "getAsync is marked experimental in lmdb"). */
  readonly notes: readonly string[];
}

/** A store family: creates adapters for a mode and a directory. */
export interface AdapterFactory {
  readonly store: string;
  /** Package name and version for the JSON/report. */
  readonly packageName: string;
  readonly packageVersion: string;
  create(mode: Mode, dir: string): StoreAdapter;
}

/** A numeric result of one store/mode in one repetition. */
export interface MetricValue {
  value: number;
  unit: string;
}

/** Everything one workload produced in one repetition for one store/mode. */
export interface WorkloadResult {
  workload: string;
  metrics: Record<string, number>;
  /** Per-call latency sample summaries (ns) keyed by metric prefix. */
  latency?: Record<string, LatencySummary>;
  /** Raw per-call samples (ns), only with --raw-samples. */
  samples?: Record<string, number[]>;
  io?: IoDelta;
  memory?: MemoryFigures;
  notes?: string[];
  /** Set when the workload threw; its figures are then partial or missing. */
  error?: string;
  wallSeconds: number;
}

export interface LatencySummary {
  count: number;
  minNs: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  p999Ns: number;
  maxNs: number;
  meanNs: number;
}

export interface IoDelta {
  /** /proc/self/io write_bytes delta: bytes this process caused to be sent to the block layer. */
  writeBytes: number;
  /** cancelled_write_bytes delta (dirty page cache dropped before write-back, e.g. deleted files). */
  cancelledWriteBytes: number;
  /** wchar delta: bytes passed to write()-like system calls (page cache included). */
  wchar: number;
  readBytes: number;
  rchar: number;
}

export interface MemoryFigures {
  /** RSS when the workload started (bytes). */
  rssStart: number;
  /** Peak RSS during the workload (VmHWM after a reset, bytes). */
  rssPeak: number;
  /** How the peak was measured: 'vmhwm-reset' or 'vmhwm-process' (not resettable) */
  method: string;
}

export interface RunRecord {
  rep: number;
  store: string;
  mode: Mode;
  /** Position of this store/mode in this repetition's order (0 = first). */
  position: number;
  workloads: WorkloadResult[];
  error?: string;
}
