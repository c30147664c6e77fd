/**
 * Crash-safe file writes for everything the key and account layers persist.
 *
 * {@link writeFileAtomic}: write a temp file in the same directory, fsync it, rename it over the target, fsync the
 * directory. After a crash at any point the target holds either the old content or the new, never a mix; a
 * leftover temp file (named `.<name>.tmp-<pid>-<n>`) is harmless and {@link removeStaleTempFiles} clears it.
 * {@link createFileExclusive} does the same but refuses to replace an existing file (a hard link instead of a
 * rename), for files that must be created exactly once, like the service master key.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Mode of files holding secrets or wrapped secrets: owner read/write only. */
export const SECRET_FILE_MODE = 0o600;
/** Mode of directories the key layer creates: owner only. */
export const PRIVATE_DIR_MODE = 0o700;

const TEMP_MARKER = '.tmp-';
const TEMP_SUFFIX_BYTES = 6;

function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}${TEMP_MARKER}${process.pid}-${randomBytes(TEMP_SUFFIX_BYTES).toString('hex')}`);
}

/** fsync a directory so a rename or unlink in it is durable. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeTemp(target: string, data: Uint8Array | string, mode: number): Promise<string> {
  const temp = tempPathFor(target);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode); // the umask may have narrowed or (with O_CREAT) not applied the mode as asked
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  return temp;
}

/** Replace `target` with `data` atomically and durably (temp file, fsync, rename, fsync of the directory). */
export async function writeFileAtomic(target: string, data: Uint8Array | string, options: { mode?: number } = {}): Promise<void> {
  const mode = options.mode ?? SECRET_FILE_MODE;
  const temp = await writeTemp(target, data, mode);
  try {
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncDirectory(dirname(target));
}

/**
 * Create `target` with `data` atomically, only if it does not exist yet. Returns false (and writes nothing) when
 * it already exists, e.g. because another process created it first.
 */
export async function createFileExclusive(target: string, data: Uint8Array, options: { mode?: number } = {}): Promise<boolean> {
  const temp = await writeTemp(target, data, options.mode ?? SECRET_FILE_MODE);
  try {
    await link(temp, target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
    await fsyncDirectory(dirname(target));
  }
}

/** Create a private directory (0700) and its parents if missing. */
export async function ensurePrivateDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
}

/** Remove temp files a crashed writer left in `dir`. Returns how many were removed. */
export async function removeStaleTempFiles(dir: string): Promise<number> {
  let removed = 0;
  for (const name of await readdir(dir)) {
    if (name.startsWith('.') && name.includes(TEMP_MARKER)) {
      await unlink(join(dir, name)).catch(() => undefined);
      removed++;
    }
  }
  if (removed > 0) await fsyncDirectory(dir);
  return removed;
}

/** Read a whole file into `Buffer.alloc` memory (not the shared pool): for files holding secrets. */
export async function readSecretFile(path: string, maxBytes: number): Promise<Buffer> {
  const handle = await open(path, constants.O_RDONLY);
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new RangeError(`${path} is ${size} bytes, more than the ${maxBytes} expected`);
    const out = Buffer.alloc(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await handle.read(out, filled, size - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === size ? out : out.subarray(0, filled);
  } finally {
    await handle.close();
  }
}
