/**
 * Local state readable by its owner only: run inputs and results live in these files, and other
 * users of the machine have no business reading them. Modes are set with chmod after creation,
 * since the mode given to open/mkdir is filtered by the process umask.
 */
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `dir` (and missing parents) owner-only. A directory that already existed keeps its mode:
 * it may be the user's own (a project folder), which is theirs to set.
 */
export function ensurePrivateDir(dir: string): void {
  const first = mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first === undefined) return;
  // Every directory this call created, from the outermost to `dir`.
  const created = relative(first, dir).split(sep).filter(Boolean);
  let path = first;
  chmodSync(path, PRIVATE_DIR_MODE);
  for (const part of created) {
    path = join(path, part);
    chmodSync(path, PRIVATE_DIR_MODE);
  }
}

/**
 * Creates `file` empty and owner-only if it does not exist, else narrows an existing file of ours
 * to owner-only (one written by an older version). Another user's file keeps the mode they chose.
 */
export function ensurePrivateFile(file: string): void {
  ensurePrivateDir(dirname(file));
  const fd = openSync(file, "a", PRIVATE_FILE_MODE);
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") throw err;
  } finally {
    closeSync(fd);
  }
}

/** Writes `file` owner-only and atomically (a reader never sees half of it). */
export function writePrivateFile(file: string, data: string | Uint8Array): void {
  ensurePrivateDir(dirname(file));
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: PRIVATE_FILE_MODE });
  chmodSync(tmp, PRIVATE_FILE_MODE);
  renameSync(tmp, file);
}
