// Lint: type-aware rules that catch the mistakes a durable engine cannot afford
// (floating promises, misused promises) and import cycles between modules.
import tseslint from "typescript-eslint";
import importX from "eslint-plugin-import-x";
import noImportCycle from "./eslint/no-import-cycle.js";
import { layers } from "./eslint/layers.js";

export default tseslint.config(
  {
    ignores: [
      "node_modules/**",
      "dist/**",
      "cdk.out/**",
      ".aloft/**",
      "eslint.config.js",
      "eslint/**",
      "bin/**",
    ],
  },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts", "**/*.tsx"],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { "import-x": importX, aloft: { rules: { "no-import-cycle": noImportCycle } } },
    settings: { "import-x/resolver": { node: { extensions: [".ts", ".js"] } } },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test registers tests through returned promises that the runner itself awaits.
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["describe", "it", "test", "suite"] },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: false }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
      "aloft/no-import-cycle": "error",
      // The layers of docs/architecture.md: each depends inward only.
      "import-x/no-restricted-paths": ["error", { zones: layers }],
    },
  },
);
