import { ForestError } from '../errors.js';
import type { Database } from './database.js';
import { emptyView, StoreReader, type StoreView } from './reader.js';

/**
 * A consistent read view over every store as of one commit. Later writes, commits and
 * index flushes do not change its answers. Close it when done: while it is open, the
 * versions it can see are kept (they are never reclaimed under it).
 */
export class Snapshot {
  private readonly readers = new Map<string, StoreReader>();
  private open = true;

  /** @internal */
  constructor(
    private readonly db: Database,
    /** Sequence number of the last write the view includes. */
    readonly seq: number,
    /** The commit the view is of. */
    readonly commit: number,
    private readonly views: Map<string, StoreView>,
    private readonly onClose: () => void,
  ) {}

  /** The named store as of this snapshot (empty if it did not exist then). */
  store(name = 'default'): StoreReader {
    this.assertOpen();
    let r = this.readers.get(name);
    if (!r) {
      const view = this.views.get(name) ?? emptyView(name, this.seq);
      r = new StoreReader(this.db, view, () => this.assertOpen(), this.commit);
      this.readers.set(name, r);
    }
    return r;
  }

  stores(): string[] {
    this.assertOpen();
    return [...this.views.keys()].sort();
  }

  get closed(): boolean {
    return !this.open;
  }

  /** Releases the view. Idempotent; the database's close() closes every snapshot. */
  close(): void {
    if (!this.open) return;
    this.open = false;
    this.onClose();
  }

  private assertOpen(): void {
    if (!this.open) throw new ForestError('CLOSED', 'the snapshot is closed');
    this.db.assertOpen();
  }
}
