/**
 * The directory of `aloft dev --persist <dir>`: DynamoDB Local's database (dynamodb/), fauxqs's
 * snapshot (fauxqs/), and a manifest (aloft-dev.json) with what must stay the same across restarts
 * — the resource name prefix — and the ports last used, tried first so that variables exported in
 * another shell keep working. Owner-only. Wipe it with `rm -rf <dir>` while `aloft dev` is stopped.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ensurePrivateDir, writePrivateFile } from "../sdk/local/private-files.ts";

const MANIFEST = "aloft-dev.json";
const MANIFEST_VERSION = 1;

export interface PersistManifest {
  version: number;
  /** Prefix of the table, queue and bucket names. */
  prefix?: string;
  ports?: { dynamodb?: number; sqs?: number };
}

export class PersistDirError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PersistDirError";
  }
}

export class PersistDir {
  readonly path: string;
  readonly dynamodb: string;
  readonly fauxqs: string;

  /** Opens `dir`, creating it owner-only; refuses a non-empty directory that is not one of ours. */
  constructor(dir: string) {
    this.path = resolve(dir);
    if (existsSync(this.path) && !existsSync(join(this.path, MANIFEST))) {
      const entries = readdirSync(this.path);
      if (entries.length > 0) {
        throw new PersistDirError(
          `${this.path} is not empty and holds no ${MANIFEST}: give --persist a new or empty directory ` +
            `(aloft dev keeps its tables, queues and objects there, owner-only)`,
        );
      }
    }
    ensurePrivateDir(this.path);
    this.dynamodb = join(this.path, "dynamodb");
    this.fauxqs = join(this.path, "fauxqs");
    if (!existsSync(join(this.path, MANIFEST))) this.write({ version: MANIFEST_VERSION });
  }

  read(): PersistManifest {
    const file = join(this.path, MANIFEST);
    try {
      const manifest = JSON.parse(readFileSync(file, "utf8")) as PersistManifest;
      if (manifest.version !== MANIFEST_VERSION) throw new Error(`format ${String(manifest.version)}`);
      return manifest;
    } catch (err) {
      throw new PersistDirError(`cannot read ${file} (this Aloft reads format ${MANIFEST_VERSION})`, {
        cause: err,
      });
    }
  }

  /** Merges `fields` into the manifest. */
  update(fields: Omit<PersistManifest, "version">): void {
    const current = this.read();
    this.write({ ...current, ...fields, ports: { ...current.ports, ...fields.ports } });
  }

  private write(manifest: PersistManifest): void {
    writePrivateFile(join(this.path, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  }
}
