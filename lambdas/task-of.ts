/** The task as an action runs it on AWS: its registered settings, with its call site's overrides. */
import { withSettings } from "../sdk/core/task-def.ts";
import type { CallSettings, TaskDef } from "../sdk/core/task-def.ts";
import { findTask } from "../sdk/registry.ts";

/** The task of the action a message is about, with the settings its call site overrides (`o`). */
export function taskOf(m: { task: string; o?: CallSettings | undefined }): TaskDef | undefined {
  const def = findTask(m.task);
  return def && withSettings(def, m.o);
}
