// The registry of stores. To add a store: write one adapter file exporting an AdapterFactory and
// list it here. ForestFS registers itself only once src/index.ts exports open().
import type { AdapterFactory } from '../types.js';
import { lmdbFactory } from './lmdb.js';
import { classicLevelFactory } from './classic-level.js';
import { betterSqlite3Factory } from './better-sqlite3.js';
import { loadForestFs } from './forestfs.js';

/** Peers in a fixed canonical order (the runner rotates it per repetition). */
export const PEERS: readonly AdapterFactory[] = [lmdbFactory, classicLevelFactory, betterSqlite3Factory];

export const ALL_STORE_NAMES = ['forestfs', ...PEERS.map((p) => p.store)] as const;

export interface Registry {
  factories: AdapterFactory[];
  /** Why ForestFS is not in `factories`, if it is not. */
  skipped: string | null;
}

export async function loadRegistry(): Promise<Registry> {
  const ff = await loadForestFs();
  if ('factory' in ff) return { factories: [ff.factory, ...PEERS], skipped: null };
  return { factories: [...PEERS], skipped: ff.skipped };
}
