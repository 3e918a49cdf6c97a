// ESLint (flat config) for the dashboard's browser modules and their Node tests. `make lint` runs
// the exactly pinned ESLint installed into the git-ignored .local/eslint/ (see the Makefile), so the
// rules' package is loaded from there too.

import { createRequire } from "node:module";

const require = createRequire(new URL("./.local/eslint/", import.meta.url));
const js = require("@eslint/js");

// The browser's objects the dashboard uses; any other global is a mistake.
const BROWSER = Object.fromEntries(
  [
    "AbortController",
    "HTMLElement",
    "IntersectionObserver",
    "Node",
    "ResizeObserver",
    "URL",
    "URLSearchParams",
    "clearTimeout",
    "document",
    "fetch",
    "history",
    "location",
    "requestAnimationFrame",
    "setTimeout",
    "window",
  ].map((name) => [name, "readonly"]),
);
const NODE = Object.fromEntries(["URL", "URLSearchParams", "clearTimeout", "process", "setTimeout"].map((name) => [name, "readonly"]));

const RULES = {
  ...js.configs.recommended.rules,
  eqeqeq: ["error", "always"],
  "no-var": "error",
  "prefer-const": "error",
  "no-console": "error",
  "no-implicit-coercion": ["error", { allow: ["!!"] }],
  "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
  // A module this long holds more than one thing.
  "max-lines": ["error", { max: 400 }],
};

export default [
  { ignores: [".local/", ".venv/", "**/node_modules/"] },
  {
    files: ["services/api/static/js/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: BROWSER },
    rules: RULES,
  },
  {
    files: ["tests/js/**/*.js", "eslint.config.mjs"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: NODE },
    rules: RULES,
  },
];
