/**
 * A finished run's result as every surface reports it (run.result() on both engines, the client,
 * `aloft result`): the value, or the error — CancelledError / TaskTimeoutError as recorded, any
 * other failure as a TaskError naming the root task and its attempts.
 */
import type { Outcome } from "./core/history.ts";
import { TaskError, deserializeError } from "./errors.ts";
import { deserialize } from "./serde.ts";

export function runResult<R>(task: string, status: string, o: Outcome): R {
  if (o.ok) return deserialize(o.value) as R;
  if (status === "CANCELLED" || status === "TIMED_OUT") throw deserializeError(o.error);
  throw new TaskError(task, o.error, o.error.attempts ?? 1);
}
