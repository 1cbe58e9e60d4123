// A dependency cycle through relative imports, type-only and dynamic imports included
// (import-x/no-cycle skips type-only imports; a type in the wrong module is still a cycle).
import fs from "node:fs";
import path from "node:path";

const SPEC = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;
const edges = new Map();

function importsOf(file) {
  let out = edges.get(file);
  if (out) return out;
  out = [];
  edges.set(file, out);
  let src;
  try {
    src = fs.readFileSync(file, "utf8");
  } catch {
    return out;
  }
  for (const m of src.matchAll(SPEC)) {
    const target = path.resolve(path.dirname(file), m[1]);
    if (/\.(ts|js)$/.test(target) && fs.existsSync(target)) out.push({ spec: m[1], target });
  }
  return out;
}

/** A path of files from `start` back to `start`, if any (depth-first, each file visited once). */
function cycleFrom(start, first) {
  const seen = new Set([first]);
  const stack = [[first, [first]]];
  while (stack.length) {
    const [file, trail] = stack.pop();
    for (const { target } of importsOf(file)) {
      if (target === start) return trail;
      if (!seen.has(target)) {
        seen.add(target);
        stack.push([target, [...trail, target]]);
      }
    }
  }
  return undefined;
}

export default {
  meta: { type: "problem", messages: { cycle: "import cycle: {{trail}}" }, schema: [] },
  create(context) {
    const file = context.physicalFilename;
    edges.delete(file); // the file being linted may have changed since it was last read
    return {
      Program(node) {
        for (const { spec, target } of importsOf(file)) {
          const trail = cycleFrom(file, target);
          if (!trail) continue;
          const rel = (f) => path.relative(process.cwd(), f);
          context.report({
            node,
            messageId: "cycle",
            data: { trail: [file, ...trail, file].map(rel).join(" -> ") + ` (via "${spec}")` },
          });
          return;
        }
      },
    };
  },
};
