/**
 * The size DynamoDB bills for an item, by its documented rules (Developer Guide, "Item sizes and
 * formats"): attribute names count; a string is its UTF-8 bytes; a number 1 byte per two significant
 * digits (leading and trailing zeroes trimmed) + 1; a boolean or null 1; a list or map 3 bytes + 1
 * per element + its elements (a map's keys count as names). Written independently of the code it
 * checks, as the oracle for item-size budgets.
 */
export function itemBytes(item: Record<string, unknown>): number {
  let n = 0;
  for (const [name, v] of Object.entries(item))
    if (v !== undefined) n += Buffer.byteLength(name) + valueBytes(v);
  return n;
}

function valueBytes(v: unknown): number {
  if (typeof v === "string") return Buffer.byteLength(v);
  if (typeof v === "number") {
    const digits = String(Math.abs(v)).replace(".", "").replace(/^0+/, "").replace(/0+$/, "") || "0";
    return Math.ceil(digits.length / 2) + 1;
  }
  if (typeof v === "boolean" || v === null) return 1;
  if (v instanceof Uint8Array) return v.byteLength;
  if (Array.isArray(v)) return 3 + v.reduce((s: number, e) => s + 1 + valueBytes(e), 0);
  if (typeof v === "object")
    return (
      3 +
      Object.entries(v as Record<string, unknown>).reduce(
        (s, [k, e]) => s + 1 + Buffer.byteLength(k) + valueBytes(e),
        0,
      )
    );
  throw new Error(`no DynamoDB type for ${typeof v}`);
}
