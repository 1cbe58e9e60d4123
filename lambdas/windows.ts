/**
 * Letting a windowed map's next items out: the store releases slots (store/windows.ts) and says
 * which it freed; this reads the calls that now occupy them and sends their execs.
 */
import type { Runtime } from "../sdk/aws/runtime.ts";
import { readCalls } from "../sdk/aws/store/history.ts";
import { itemAt } from "../sdk/aws/store/windows.ts";
import type { Freed } from "../sdk/aws/store/windows.ts";
import { execOf, sendExecs } from "../sdk/aws/transport/dispatch.ts";

/** Sends the occupants of the slots `freed` names (a slot past the map's last item has none). */
export async function sendOccupants(
  rt: Runtime,
  run: string,
  parent: string,
  freed: readonly Freed[],
): Promise<void> {
  for (const { w, released } of freed) {
    const items = released
      .map((d) => ({ d, q: w.slots[d.ws]!, i: itemAt(w, w.slots[d.ws]!) }))
      .filter((x) => x.i < w.size);
    if (!items.length) continue;
    const calls = await readCalls(
      rt,
      parent,
      w.epoch,
      items.map((x) => w.offset + x.i),
    );
    await sendExecs(
      rt,
      calls.map((c, n) => ({ msg: execOf(run, c, { window: w.name, ws: items[n]!.d.ws, wq: items[n]!.q }) })),
    );
  }
}
