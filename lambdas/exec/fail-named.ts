/** Failing the action a malformed message names (the message itself still dead-letters). */
import { ConfigurationError, serializeError } from "../../sdk/errors.ts";
import { sendToCoordinator } from "../../sdk/aws/transport/dispatch.ts";
import { doneOf } from "../../sdk/aws/messages.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { writeTerminal } from "../../sdk/aws/store/results.ts";

/** Fails the action a malformed message names, when it names one (the message still dead-letters). */
export async function failNamedAction(
  rt: Runtime,
  ref: { run: string; id: string; parent?: string | null | undefined },
  error: string,
): Promise<void> {
  const outcome = {
    ok: false as const,
    error: { ...serializeError(new ConfigurationError(error)), nonRecoverable: true },
  };
  const parent = ref.parent ?? null;
  const w = await writeTerminal(rt, {
    run: ref.run,
    parent,
    id: ref.id,
    status: "FAILED",
    outcome,
    attempt: undefined,
  });
  if (w.written && parent !== null) {
    await sendToCoordinator(rt, [{ msg: doneOf(ref, parent, false) }]);
  }
}
