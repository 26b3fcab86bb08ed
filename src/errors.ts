/**
 * The one error type users see. Every refusal carries a stable `code` that programs can
 * branch on; the message says what was wrong in words.
 */
export type ForestErrorCode =
  | 'INVALID_ARGUMENT'
  | 'UNALIGNED'
  | 'OUT_OF_RANGE'
  | 'IO'
  | 'LOCKED'
  | 'NOT_FOUND'
  | 'READ_ONLY'
  | 'CLOSED'
  | 'UNSUPPORTED'
  | 'BACKEND_UNAVAILABLE'
  | 'CORRUPT'
  | 'NOT_FORESTFS'
  | 'DEVICE_FULL'
  | 'KEY_EMPTY'
  | 'KEY_TOO_LONG'
  | 'VALUE_TOO_LARGE'
  | 'VALUE_NOT_ENCODABLE'
  | 'CONFLICT';

export class ForestError extends Error {
  readonly code: ForestErrorCode;

  constructor(code: ForestErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ForestError';
    this.code = code;
  }
}
