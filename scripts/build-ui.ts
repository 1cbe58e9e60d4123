/** `npm run build`'s last step: the UI bundle into dist/ui/ (sdk/cli/ui/bundle.ts). */
import { mkdirSync, writeFileSync } from "node:fs";
import { bundleUi } from "../sdk/cli/ui/bundle.ts";

const { js, css } = await bundleUi();
const dir = new URL("../dist/ui/", import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL("app.js", dir), js);
writeFileSync(new URL("app.css", dir), css);
// On stderr: `npm pack --json` prints its JSON on stdout, after the build's own output.
process.stderr.write(`dist/ui: app.js ${js.length} bytes, app.css ${css.length} bytes\n`);
