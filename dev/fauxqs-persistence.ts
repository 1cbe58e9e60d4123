/**
 * Queue messages and bucket objects of fauxqs, kept in a directory across restarts of `aloft dev
 * --persist`. fauxqs 1.9 keeps all state in memory and has no persistence of its own, so this
 * snapshots its stores (built here and handed to buildApp) and restores them at the next start.
 *
 * What is kept: every queue's messages — ready, delayed (with their delay), and in flight (those
 * come back ready: the consumer that held them is gone) — with their ids, bodies, attributes and
 * receive counts; every bucket's objects with content type and metadata. Queue settings are not
 * kept: the queues are created again from the current configuration and the messages of a queue
 * that no longer exists are dropped (and reported). FIFO deduplication history is not kept.
 *
 * When: every SNAPSHOT_INTERVAL_MS while running (only if something changed) and at stop. A hard
 * kill (SIGKILL, power loss) loses at most the changes of the last interval: messages sent since
 * come back only when the reconciler re-drives their stalled runs; messages deleted since are
 * delivered again (handlers take duplicates); objects written since are gone.
 *
 * Layout: <dir>/state.json (an index, written atomically) and <dir>/objects/<etag> (bodies, by
 * content, so an unchanged object is written once).
 */
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ensurePrivateDir, writePrivateFile } from "../sdk/local/private-files.ts";

export const SNAPSHOT_INTERVAL_MS = 2_000;
const FORMAT_VERSION = 1;

/** The parts of fauxqs's SqsMessage kept (all JSON values). */
type SqsMessage = Record<string, unknown> & { messageId: string };

interface SqsQueueLike {
  name: string;
  enqueue(message: SqsMessage): void;
  inspectMessages(): {
    ready: SqsMessage[];
    delayed: SqsMessage[];
    inflight: Array<{ message: SqsMessage }>;
  };
}

interface S3ObjectLike {
  key: string;
  body: Buffer;
  contentType: string;
  etag: string;
  metadata: Record<string, string>;
}

/** fauxqs's stores, as buildApp's `stores` option takes them; only what is used here is typed. */
export interface FauxqsStores {
  sqsStore: {
    listQueues(): SqsQueueLike[];
    getQueueByName(name: string): SqsQueueLike | undefined;
  };
  snsStore: object;
  s3Store: {
    createBucket(name: string): void;
    listBuckets(): Array<{ name: string }>;
    listObjects(bucket: string, options: { maxKeys: number }): { objects: S3ObjectLike[] };
    putObject(
      bucket: string,
      key: string,
      body: Buffer,
      contentType?: string,
      metadata?: Record<string, string>,
    ): unknown;
  };
}

interface SnapshotFile {
  version: number;
  savedAt: string;
  queues: Array<{ name: string; messages: SqsMessage[] }>;
  buckets: Array<{
    name: string;
    objects: Array<{ key: string; contentType: string; metadata: Record<string, string>; body: string }>;
  }>;
}

export class FauxqsPersistenceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "FauxqsPersistenceError";
  }
}

/**
 * New, empty stores from fauxqs's own modules. They are not exported by the package (its exports
 * name only dist/app.js), so they are loaded by file; the pinned fauxqs 1.9 is the version checked.
 */
export async function createFauxqsStores(): Promise<FauxqsStores> {
  // import.meta.resolve: the package exports only an `import` condition, which require.resolve skips.
  const dist = dirname(fileURLToPath(import.meta.resolve("fauxqs")));
  const load = async (file: string, name: string): Promise<new () => object> => {
    try {
      const mod = (await import(pathToFileURL(join(dist, file)).href)) as Record<string, unknown>;
      const ctor = mod[name];
      if (typeof ctor !== "function") throw new Error(`${file} exports no ${name}`);
      return ctor as new () => object;
    } catch (err) {
      throw new FauxqsPersistenceError(
        `aloft dev --persist needs fauxqs 1.9's store classes (${name} in ${file}); install fauxqs 1.9`,
        { cause: err },
      );
    }
  };
  const [Sqs, Sns, S3] = await Promise.all([
    load("sqs/sqsStore.js", "SqsStore"),
    load("sns/snsStore.js", "SnsStore"),
    load("s3/s3Store.js", "S3Store"),
  ]);
  return {
    sqsStore: new Sqs() as FauxqsStores["sqsStore"],
    snsStore: new Sns(),
    s3Store: new S3() as FauxqsStores["s3Store"],
  };
}

export interface RestoredMessages {
  restored: number;
  /** Queues in the snapshot that do not exist now, with how many messages each lost. */
  dropped: Record<string, number>;
}

export class FauxqsPersistence {
  private readonly objectsDir: string;
  private readonly stateFile: string;
  private lastWritten = "";
  private pending: SnapshotFile["queues"] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly dir: string,
    private readonly stores: FauxqsStores,
  ) {
    this.objectsDir = join(dir, "objects");
    this.stateFile = join(dir, "state.json");
    ensurePrivateDir(this.objectsDir);
  }

  /**
   * Reads the snapshot: buckets and objects go back at once; messages wait for their queues to be
   * created again (restoreMessages). Returns how many objects were restored.
   */
  load(): number {
    if (!existsSync(this.stateFile)) return 0;
    let snapshot: SnapshotFile;
    try {
      snapshot = JSON.parse(readFileSync(this.stateFile, "utf8")) as SnapshotFile;
    } catch (err) {
      throw new FauxqsPersistenceError(`cannot read ${this.stateFile}; remove it to start empty`, {
        cause: err,
      });
    }
    if (snapshot.version !== FORMAT_VERSION) {
      throw new FauxqsPersistenceError(
        `${this.stateFile} has format ${String(snapshot.version)}, this Aloft reads ${FORMAT_VERSION}; remove it to start empty`,
      );
    }
    let objects = 0;
    for (const bucket of snapshot.buckets) {
      this.stores.s3Store.createBucket(bucket.name);
      for (const o of bucket.objects) {
        const body = readFileSync(join(this.objectsDir, o.body));
        this.stores.s3Store.putObject(bucket.name, o.key, body, o.contentType, o.metadata);
        objects++;
      }
    }
    this.pending = snapshot.queues;
    this.lastWritten = JSON.stringify({ queues: snapshot.queues, buckets: snapshot.buckets });
    return objects;
  }

  /** Puts the loaded messages back into the queues of the same names (call once they exist). */
  restoreMessages(): RestoredMessages {
    const result: RestoredMessages = { restored: 0, dropped: {} };
    for (const { name, messages } of this.pending) {
      const queue = this.stores.sqsStore.getQueueByName(name);
      if (!queue) {
        if (messages.length > 0) result.dropped[name] = messages.length;
        continue;
      }
      for (const message of messages) queue.enqueue(message);
      result.restored += messages.length;
    }
    this.pending = [];
    return result;
  }

  /** Saves every `intervalMs` while something changes. */
  startPeriodic(intervalMs = SNAPSHOT_INTERVAL_MS): void {
    this.timer ??= setInterval(() => {
      try {
        this.save();
      } catch (err) {
        process.stderr.write(`aloft dev: saving queues and objects failed: ${String(err)}\n`);
      }
    }, intervalMs).unref();
  }

  stopPeriodic(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Writes a snapshot if anything changed since the last one; returns whether it wrote. */
  save(): boolean {
    const queues = this.stores.sqsStore.listQueues().map((queue) => {
      const { ready, delayed, inflight } = queue.inspectMessages();
      return { name: queue.name, messages: [...inflight.map((e) => e.message), ...ready, ...delayed] };
    });
    const bodies = new Map<string, Buffer>();
    const buckets = this.stores.s3Store.listBuckets().map(({ name }) => ({
      name,
      objects: this.stores.s3Store
        .listObjects(name, { maxKeys: Number.MAX_SAFE_INTEGER })
        .objects.map((o) => {
          const file = o.etag.replace(/[^A-Za-z0-9-]/g, "");
          bodies.set(file, o.body);
          return { key: o.key, contentType: o.contentType, metadata: o.metadata, body: file };
        }),
    }));
    const content = JSON.stringify({ queues, buckets });
    if (content === this.lastWritten) return false;
    for (const [file, body] of bodies) {
      const path = join(this.objectsDir, file);
      if (!existsSync(path)) writePrivateFile(path, body);
    }
    const snapshot: SnapshotFile = {
      version: FORMAT_VERSION,
      savedAt: new Date().toISOString(),
      queues,
      buckets,
    };
    writePrivateFile(this.stateFile, JSON.stringify(snapshot));
    this.lastWritten = content;
    // Bodies no object names any more (deleted or overwritten), once the index no longer needs them.
    for (const file of readdirSync(this.objectsDir)) {
      if (!bodies.has(file) && !file.endsWith(".tmp")) rmSync(join(this.objectsDir, file), { force: true });
    }
    return true;
  }
}
