/**
 * The browser side of `aloft ui` (ui/: preact and plain CSS), bundled by esbuild: at build time into
 * dist/ui/ (scripts/build-ui.ts), or in memory when Aloft runs from its sources. Nothing is
 * fetched at run time.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface UiAssets {
  js: string;
  css: string;
}

/** ui/ beside the package: the built bundle (dist/ui) or the sources (a checkout). */
const UI_DIR = fileURLToPath(new URL("../../../ui/", import.meta.url));

export async function bundleUi(): Promise<UiAssets> {
  const { build } = await import("esbuild");
  const out = await build({
    entryPoints: [`${UI_DIR}app.tsx`],
    bundle: true,
    write: false,
    format: "esm",
    minify: true,
    target: "es2022",
    jsx: "automatic",
    jsxImportSource: "preact",
    outdir: "out",
    logLevel: "silent",
  });
  const file = (ext: string): string =>
    out.outputFiles.find((f) => f.path.endsWith(ext))?.text ??
    (ext === ".css"
      ? ""
      : (() => {
          throw new Error(`esbuild wrote no ${ext}`);
        })());
  return { js: file(".js"), css: file(".css") };
}

let cached: Promise<UiAssets> | undefined;

/** The bundle shipped in the package, else one built now from the sources (a checkout). */
export function uiAssets(): Promise<UiAssets> {
  cached ??= (async () => {
    if (existsSync(`${UI_DIR}app.js`))
      return { js: readFileSync(`${UI_DIR}app.js`, "utf8"), css: readFileSync(`${UI_DIR}app.css`, "utf8") };
    return bundleUi();
  })();
  return cached;
}
