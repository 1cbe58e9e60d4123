/**
 * One engine per store file: a lock file holding the owner's pid. A stale lock (its process is
 * gone, e.g. after a crash) is taken over, so `aloft resume` works after a kill -9.
 */
import { closeSync, fchmodSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { StoreLockedError } from "../errors.ts";
import { PRIVATE_FILE_MODE, ensurePrivateDir } from "./private-files.ts";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class StoreLock {
  private constructor(private readonly path: string) {}

  static acquire(dbPath: string): StoreLock {
    const path = `${dbPath}.lock`;
    ensurePrivateDir(dirname(path));
    for (let tries = 0; tries < 2; tries++) {
      try {
        // Owner-only: it names the command line, and task arguments can be on it.
        const fd = openSync(path, "wx", PRIVATE_FILE_MODE);
        fchmodSync(fd, PRIVATE_FILE_MODE);
        writeSync(fd, `${process.pid}\n${process.argv.slice(1).join(" ")}\n`);
        closeSync(fd);
        return new StoreLock(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        let text = "";
        try {
          text = readFileSync(path, "utf8");
        } catch {
          continue; // released meanwhile
        }
        const [pidLine, cmd] = text.split("\n");
        const pid = Number(pidLine);
        if (Number.isInteger(pid) && pid > 0 && alive(pid)) {
          throw new StoreLockedError(
            `store ${dbPath} is in use by process ${pid} (${cmd || "aloft"}); wait for it to finish or stop it. ` +
              `Read-only commands (aloft status, aloft runs) work meanwhile, and aloft cancel reaches its runs`,
          );
        }
        try {
          unlinkSync(path); // stale: its owner is gone
        } catch {
          /* another process took it over first; retry */
        }
      }
    }
    throw new StoreLockedError(`could not lock store ${dbPath}; another process keeps taking it`);
  }

  /** The pid of the live process holding the store, if any. */
  static holder(dbPath: string): number | undefined {
    try {
      const pid = Number(readFileSync(`${dbPath}.lock`, "utf8").split("\n")[0]);
      return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  release(): void {
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}
