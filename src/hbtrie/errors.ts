/**
 * Errors thrown by the HB+-trie. An HBTrieError is a ForestError (the project's one error type),
 * so callers can handle it like any other refusal: `code` is a ForestError code, and `trieCode`
 * says more precisely what the trie refused.
 */
import { ForestError, type ForestErrorCode } from '../errors.js';

export type HBTrieErrorCode =
  /** A key of length 0. (code KEY_EMPTY) */
  | 'KEY_EMPTY'
  /** A key longer than the configured maximum (65535 bytes by default). (code KEY_TOO_LONG) */
  | 'KEY_TOO_LONG'
  /** A node failed its checksum or structural checks, or a KeyReader answer contradicts the index. (code CORRUPT) */
  | 'CORRUPT'
  /** Bad argument: a value that is not a non-negative safe integer, a bad option, a key that is not a Uint8Array. (code INVALID_ARGUMENT) */
  | 'INVALID_ARGUMENT'
  /** A batch whose keys are not in strictly ascending unsigned byte order. (code INVALID_ARGUMENT) */
  | 'BATCH_UNSORTED'
  /**
   * The trie is too deep for a batch to walk on the JavaScript stack (about a thousand trie
   * levels: thousands of long keys that are all prefixes of one another). Nothing was written.
   * (code UNSUPPORTED: a limit of this implementation, not a bad argument)
   */
  | 'TOO_DEEP';

/** The ForestError code of each trie code. */
const FOREST_CODE: Record<HBTrieErrorCode, ForestErrorCode> = {
  KEY_EMPTY: 'KEY_EMPTY',
  KEY_TOO_LONG: 'KEY_TOO_LONG',
  CORRUPT: 'CORRUPT',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  BATCH_UNSORTED: 'INVALID_ARGUMENT',
  TOO_DEEP: 'UNSUPPORTED',
};

export class HBTrieError extends ForestError {
  /** What the trie refused (finer than `code`). */
  readonly trieCode: HBTrieErrorCode;
  /** The node address involved, for CORRUPT errors. */
  readonly address: number | undefined;

  constructor(code: HBTrieErrorCode, message: string, address?: number) {
    super(FOREST_CODE[code], message);
    this.name = 'HBTrieError';
    this.trieCode = code;
    this.address = address;
  }
}

export function corrupt(address: number, what: string): HBTrieError {
  return new HBTrieError('CORRUPT', `HB+-trie node at address ${address} is corrupt: ${what}`, address);
}
