/**
 * The tamper-evident audit log of a key vault: `<vault>/audit.log`, one JSON line per key operation or refusal.
 *
 * Each record carries `prev`, the SHA-256 of the previous line's bytes (64 zeros for the first), and a sequence
 * number; `<vault>/audit.head` (written atomically after every append) holds the sequence number and hash of the
 * newest record. Appends are fsynced before the call returns. {@link verifyAuditLog} walks the chain and reports
 * the first record that is malformed, altered (its successor's `prev` or the head no longer matches), out of
 * order or missing, and a log truncated behind the head.
 *
 * After a crash the log may end in a partial line (the append was cut off; it never completed, so nothing was
 * acknowledged) or hold one record more than the head; {@link AuditLog.open} trims the first and advances the
 * head over the second. Records never hold key material: only names, versions, identities and codes.
 *
 * Limits: a hash chain shows tampering by anyone who did not rewrite the whole chain and the head together;
 * a single writer process per vault is assumed (appends are serialized within the process).
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';

import { fsyncDirectory, SECRET_FILE_MODE, writeFileAtomic } from './atomic-file.js';
import { SerialQueue } from './serial-queue.js';

export const AUDIT_LOG_FILE = 'audit.log';
export const AUDIT_HEAD_FILE = 'audit.head';
const HASH_HEX_CHARS = 64;
export const GENESIS_HASH = '0'.repeat(HASH_HEX_CHARS);
const NEWLINE = 0x0a;

export type AuditOperation =
  | 'createVault' | 'createKey' | 'rotateKey' | 'updateKey' | 'enableKey' | 'disableKey' | 'deleteKey'
  | 'recoverKey' | 'purgeKey' | 'grantAccess' | 'revokeAccess' | 'getKey' | 'wrapKey' | 'unwrapKey';

export type AuditResult = 'success' | 'refused';

/** What a caller supplies; the log adds `seq`, `time` and `prev`. */
export interface AuditEntry {
  op: AuditOperation;
  key: string | null;
  version: string | null;
  caller: string;
  result: AuditResult;
  code: string | null;
  /** Extra non-secret facts (algorithm, permissions, key type). */
  detail?: Record<string, string | number | boolean | string[]>;
}

export interface AuditRecord extends AuditEntry {
  seq: number;
  time: string;
  vault: string;
  prev: string;
}

export type AuditProblem =
  | 'malformed-record' | 'hash-mismatch' | 'sequence-gap' | 'partial-record' | 'truncated' | 'head-mismatch'
  | 'head-missing';

export interface AuditVerification {
  ok: boolean;
  /** Complete records read. */
  records: number;
  /** The first problem found, if any: `seq` is the record number (1-based) that is broken or missing. */
  firstBroken?: { seq: number; line: number; problem: AuditProblem; message: string };
}

interface AuditHead {
  seq: number;
  hash: string;
}

function sha256Hex(line: Uint8Array): string {
  return createHash('sha256').update(line).digest('hex');
}

interface SplitLog {
  lines: Buffer[];
  /** Bytes after the last newline (a cut-off append), or null. */
  partial: Buffer | null;
  /** Length of the complete part. */
  completeBytes: number;
}

function splitLines(data: Buffer): SplitLog {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === NEWLINE) {
      lines.push(data.subarray(start, i));
      start = i + 1;
    }
  }
  return { lines, partial: start < data.length ? data.subarray(start) : null, completeBytes: start };
}

async function readIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function parseHead(data: Buffer | null): AuditHead | null {
  if (data === null) return null;
  try {
    const head = JSON.parse(data.toString('utf8')) as Partial<AuditHead>;
    if (typeof head.seq === 'number' && typeof head.hash === 'string') return { seq: head.seq, hash: head.hash };
  } catch {
    // fall through
  }
  return { seq: Number.NaN, hash: '' };
}

function parseRecord(line: Buffer): AuditRecord | null {
  try {
    const record = JSON.parse(line.toString('utf8')) as Partial<AuditRecord>;
    if (typeof record.seq !== 'number' || typeof record.prev !== 'string' || typeof record.op !== 'string') return null;
    return record as AuditRecord;
  } catch {
    return null;
  }
}

/** Does the record after index `i` (or the head, for the last record) hold the hash of line `i`? */
function successorChains(lines: Buffer[], i: number, head: AuditHead | null): boolean {
  const hash = sha256Hex(lines[i] ?? Buffer.alloc(0));
  const next = lines[i + 1];
  if (next !== undefined) return parseRecord(next)?.prev === hash;
  return head !== null && head.seq === i + 1 && head.hash === hash;
}

/** Walk the chain in `data` against `head`. */
function verifyChain(data: Buffer, head: AuditHead | null): AuditVerification & { lastHash: string } {
  const { lines, partial } = splitLines(data);
  let prev = GENESIS_HASH;
  const fail = (seq: number, problem: AuditProblem, message: string): AuditVerification & { lastHash: string } =>
    ({ ok: false, records: lines.length, firstBroken: { seq, line: seq, problem, message }, lastHash: prev });
  for (let i = 0; i < lines.length; i++) {
    const seq = i + 1;
    const line = lines[i] ?? Buffer.alloc(0);
    const record = parseRecord(line);
    if (record === null) return fail(seq, 'malformed-record', `record ${seq} does not parse as an audit record`);
    if (record.seq !== seq) {
      return fail(seq, 'sequence-gap', `record ${seq} is missing or out of order (line ${seq} holds record ${record.seq})`);
    }
    if (record.prev !== prev) {
      // Either record seq-1 was altered, or this record's own `prev` was: in the second case this record's hash
      // changed too, so its successor (or the head) no longer chains to it.
      const broken = seq > 1 && successorChains(lines, i, head) ? seq - 1 : seq;
      return fail(broken, 'hash-mismatch', `record ${broken} was altered: the hash chain breaks there`);
    }
    prev = sha256Hex(line);
  }
  if (head === null) {
    if (lines.length > 0) return fail(lines.length, 'head-missing', 'the audit head file is missing');
  } else if (Number.isNaN(head.seq)) {
    return fail(lines.length, 'head-mismatch', 'the audit head file does not parse');
  } else if (lines.length < head.seq) {
    return fail(lines.length + 1, 'truncated', `the log ends at record ${lines.length} but ${head.seq} were written`);
  } else if (head.seq > 0) {
    const atHead = lines[head.seq - 1] ?? Buffer.alloc(0);
    if (sha256Hex(atHead) !== head.hash) {
      return fail(head.seq, 'head-mismatch', `record ${head.seq} was altered: it no longer matches the audit head`);
    }
  }
  if (partial !== null) {
    return fail(lines.length + 1, 'partial-record', `record ${lines.length + 1} is cut off (no newline)`);
  }
  return { ok: true, records: lines.length, lastHash: prev };
}

/** Verify the audit log of the vault in `dir`. Reads only; needs no key. */
export async function verifyAuditLog(dir: string): Promise<AuditVerification> {
  const data = (await readIfExists(join(dir, AUDIT_LOG_FILE))) ?? Buffer.alloc(0);
  const head = parseHead(await readIfExists(join(dir, AUDIT_HEAD_FILE)));
  const { lastHash: _unused, ...result } = verifyChain(data, head);
  return result;
}

export class AuditLog {
  readonly #dir: string;
  readonly #vault: string;
  readonly #now: () => Date;
  readonly #queue = new SerialQueue();
  #seq: number;
  #lastHash: string;

  private constructor(dir: string, vault: string, now: () => Date, seq: number, lastHash: string) {
    this.#dir = dir;
    this.#vault = vault;
    this.#now = now;
    this.#seq = seq;
    this.#lastHash = lastHash;
  }

  get path(): string {
    return join(this.#dir, AUDIT_LOG_FILE);
  }

  /** Create an empty log and head for a new vault (replacing leftovers of a vault creation that crashed). */
  static async create(dir: string, vault: string, now: () => Date): Promise<AuditLog> {
    const handle = await open(join(dir, AUDIT_LOG_FILE), constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, SECRET_FILE_MODE);
    await handle.sync();
    await handle.close();
    await writeFileAtomic(join(dir, AUDIT_HEAD_FILE), JSON.stringify({ seq: 0, hash: GENESIS_HASH }));
    return new AuditLog(dir, vault, now, 0, GENESIS_HASH);
  }

  /** Open the log, repairing what a crash can leave (a cut-off last line; a head one record behind). */
  static async open(dir: string, vault: string, now: () => Date): Promise<AuditLog> {
    const logPath = join(dir, AUDIT_LOG_FILE);
    let data = (await readIfExists(logPath)) ?? Buffer.alloc(0);
    const head = parseHead(await readIfExists(join(dir, AUDIT_HEAD_FILE)));
    const split = splitLines(data);
    if (split.partial !== null && head !== null && split.lines.length >= head.seq) {
      await truncate(logPath, split.completeBytes);
      await fsyncFile(logPath);
      data = data.subarray(0, split.completeBytes);
    }
    const { lines } = splitLines(data);
    let prev = GENESIS_HASH;
    for (const line of lines) prev = sha256Hex(line);
    const log = new AuditLog(dir, vault, now, lines.length, prev);
    if (head !== null && !Number.isNaN(head.seq) && lines.length > head.seq && verifyChain(data, head).ok) {
      await log.#writeHead();
    }
    return log;
  }

  /** Append one record and fsync it (then the head). */
  append(entry: AuditEntry): Promise<AuditRecord> {
    return this.#queue.run(async () => {
      const record: AuditRecord = {
        seq: this.#seq + 1,
        time: this.#now().toISOString(),
        vault: this.#vault,
        op: entry.op,
        key: entry.key,
        version: entry.version,
        caller: entry.caller,
        result: entry.result,
        code: entry.code,
        ...(entry.detail === undefined ? {} : { detail: entry.detail }),
        prev: this.#lastHash,
      };
      const line = Buffer.from(JSON.stringify(record), 'utf8');
      const handle = await open(this.path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, SECRET_FILE_MODE);
      try {
        await handle.write(Buffer.concat([line, Buffer.from([NEWLINE])]));
        await handle.sync();
      } finally {
        await handle.close();
      }
      this.#seq = record.seq;
      this.#lastHash = sha256Hex(line);
      await this.#writeHead();
      return record;
    });
  }

  async #writeHead(): Promise<void> {
    await writeFileAtomic(join(this.#dir, AUDIT_HEAD_FILE), JSON.stringify({ seq: this.#seq, hash: this.#lastHash }));
  }
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDWR);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsyncDirectory(join(path, '..'));
}
