/**
 * Errors thrown by the HB+-trie. Every error carries a stable `code`; the codes that overlap
 * with the project's public error codes (KEY_EMPTY, KEY_TOO_LONG, CORRUPT, INVALID_ARGUMENT)
 * use the same spelling so the engine can pass them through unchanged.
 */
export type HBTrieErrorCode =
  /** A key of length 0. */
  | 'KEY_EMPTY'
  /** A key longer than the configured maximum (65535 bytes by default). */
  | 'KEY_TOO_LONG'
  /** A node failed its checksum or structural checks, or a KeyReader answer contradicts the index. */
  | 'CORRUPT'
  /** Bad argument: a value that is not a non-negative safe integer, a bad option, a key that is not a Uint8Array. */
  | 'INVALID_ARGUMENT'
  /** A batch whose keys are not in strictly ascending unsigned byte order. */
  | 'BATCH_UNSORTED'
  /**
   * The trie is too deep for a batch to walk on the JavaScript stack (about a thousand trie
   * levels: thousands of long keys that are all prefixes of one another). Nothing was written.
   */
  | 'TOO_DEEP';

export class HBTrieError extends Error {
  readonly code: HBTrieErrorCode;
  /** The node address involved, for CORRUPT errors. */
  readonly address: number | undefined;

  constructor(code: HBTrieErrorCode, message: string, address?: number) {
    super(message);
    this.name = 'HBTrieError';
    this.code = code;
    this.address = address;
  }
}

export function corrupt(address: number, what: string): HBTrieError {
  return new HBTrieError('CORRUPT', `HB+-trie node at address ${address} is corrupt: ${what}`, address);
}
