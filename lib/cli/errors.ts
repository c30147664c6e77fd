/**
 * How the command line reports failures: exit codes that scripts can branch on and one line per error.
 *
 * | exit | meaning                                                                  |
 * |------|--------------------------------------------------------------------------|
 * | 0    | success                                                                  |
 * | 1    | anything else (I/O, corruption, conflicts, an unexpected bug)            |
 * | 2    | usage: a bad argument, option or value (commander errors, HTTP 400/416)  |
 * | 3    | access refused by keys: the 403 family (and 401, a wrong vault passphrase) |
 * | 4    | not found: HTTP 404                                                      |
 * | 130  | interrupted (Ctrl-C); the operation can be run again to resume           |
 *
 * Expected failures (`VdcryptError`, `TypeError`/`RangeError` from argument checks, usage errors) print
 * `vdcrypt: <code>: <message>`; with `--json` the same as `{"error": {code, status, message}}` on stderr.
 * Unexpected ones print one line too; `VDCRYPT_DEBUG=1` adds the stack.
 */
import { VdcryptError } from '../errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_KEY_REFUSED = 3;
export const EXIT_NOT_FOUND = 4;
export const EXIT_INTERRUPTED = 130;

const STATUS_FORBIDDEN = 403;
const STATUS_UNAUTHORIZED = 401;
const STATUS_NOT_FOUND = 404;
const STATUS_BAD_REQUEST = 400;
const STATUS_RANGE = 416;
const STATUS_ABORTED = 499;

let requestedExit = EXIT_OK;

/** For commands that print their result and still fail (an invalid image, a broken audit log). */
export function requestExit(code: number): void {
  requestedExit = code;
}

/** The exit code a command asked for, reset for the next run. */
export function takeRequestedExit(): number {
  const code = requestedExit;
  requestedExit = EXIT_OK;
  return code;
}

/** A mistake in how the command was called. */
export class UsageError extends VdcryptError {
  constructor(message: string) {
    super('UsageError', message, { status: STATUS_BAD_REQUEST });
  }
}

/** The user stopped a long operation (Ctrl-C); `resume` is the command that continues it. */
export class InterruptedError extends VdcryptError {
  constructor(message: string) {
    super('OperationAborted', message, { status: STATUS_ABORTED });
  }
}

export interface ErrorReport {
  code: string;
  status: number;
  message: string;
  /** True for failures the user can act on; false for bugs (their stack is shown with VDCRYPT_DEBUG=1). */
  expected: boolean;
}

export function describeError(error: unknown): ErrorReport {
  if (error instanceof VdcryptError) return { code: error.code, status: error.status, message: error.message, expected: true };
  if (error instanceof TypeError || error instanceof RangeError) {
    return { code: error.name, status: STATUS_BAD_REQUEST, message: error.message, expected: true };
  }
  const errno = error as NodeJS.ErrnoException | null;
  if (errno !== null && typeof errno === 'object' && typeof errno.code === 'string' && typeof errno.message === 'string') {
    // File-system failures on paths the user named (ENOENT, EACCES, EISDIR...).
    // Node's message repeats the code ("ENOENT: no such file or directory, open '/x'"); keep the rest.
    const message = errno.message.startsWith(`${errno.code}: `) ? errno.message.slice(errno.code.length + 2) : errno.message;
    return { code: errno.code, status: errno.code === 'ENOENT' ? STATUS_NOT_FOUND : 500, message, expected: true };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'InternalError', status: 500, message, expected: false };
}

export function exitCodeFor(report: Pick<ErrorReport, 'status'>): number {
  switch (report.status) {
    case STATUS_FORBIDDEN:
    case STATUS_UNAUTHORIZED:
      return EXIT_KEY_REFUSED;
    case STATUS_NOT_FOUND:
      return EXIT_NOT_FOUND;
    case STATUS_BAD_REQUEST:
    case STATUS_RANGE:
      return EXIT_USAGE;
    case STATUS_ABORTED:
      return EXIT_INTERRUPTED;
    default:
      return EXIT_FAILURE;
  }
}
