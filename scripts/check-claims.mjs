#!/usr/bin/env node
// Checks docs/claims.md: every test it names as the proof of a README claim exists, so that
// renaming or deleting a test cannot leave a claim unproven without the suite saying so.
//
// References (in backticks, in the tests column of each table):
//   module::name             a Rust #[test] fn in tests/integration/module.rs (for store_contract,
//                            a contract function the store_contract! macro runs on every backend)
//   src/file.rs::name        a Rust #[test] fn in that file
//   tests/…/file.mjs: "text" a JavaScript test( … ) in that file whose name contains the text
//   scripts/…                a check script that exists and is run by scripts/test.sh
// Exits 1 listing every reference that does not resolve, and when a table row names no test.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const read = (p) => readFileSync(join(root, p), "utf8");
const doc = read("docs/claims.md");
const testSh = read("scripts/test.sh");

/** Names of the test functions in a Rust file: `fn x` right after a test attribute. */
function rustTests(path) {
  const src = read(path);
  const names = new Set();
  for (const m of src.matchAll(/#\[(?:tokio::)?test[^\]]*\]\s*(?:#\[[^\]]*\]\s*)*(?:pub\s+)?(?:async\s+)?fn\s+(\w+)/g)) {
    names.add(m[1]);
  }
  if (path.endsWith("store_contract.rs")) {
    // The contract is plain `pub async fn`s, run on every backend by the macro that names them.
    const start = src.indexOf("macro_rules! store_contract");
    const body = start < 0 ? "" : src.slice(start, src.indexOf("\n}\n", start));
    for (const m of src.matchAll(/pub async fn (\w+)\(store: Arc<dyn SessionStore>\)/g)) {
      if (new RegExp(`\\b${m[1]}\\b`).test(body)) names.add(m[1]);
    }
  }
  return names;
}

/** Is there a test( … ) (or describe/it) in the JS file whose name's literal text contains `text`? */
function jsHasTest(path, text) {
  const src = read(path);
  for (const m of src.matchAll(/\b(?:test|it|describe)\(\s*(["'`])((?:\\.|(?!\1)[\s\S])*)\1/g)) {
    if (m[2].includes(text)) return true;
  }
  return false;
}

const problems = [];
let refs = 0;
let rows = 0;
for (const line of doc.split("\n")) {
  if (!line.startsWith("| ") || line.startsWith("| claim") || line.startsWith("|---")) continue;
  rows += 1;
  const cells = line.split(" | ");
  const tests = cells[cells.length - 1];
  const found = [...tests.matchAll(/`([^`]+)`/g)].map((m) => m[1]);
  if (found.length === 0) problems.push(`a claim names no test: ${cells[0].slice(2)}`);
  for (const ref of found) {
    refs += 1;
    let m;
    if ((m = ref.match(/^(tests\/[\w/.-]+\.mjs): "(.+)"$/))) {
      if (!existsSync(join(root, m[1]))) problems.push(`${ref}: no such file`);
      else if (!jsHasTest(m[1], m[2])) problems.push(`${ref}: no test in ${m[1]} whose name contains "${m[2]}"`);
    } else if ((m = ref.match(/^(src\/[\w/]+\.rs)::(\w+)$/))) {
      if (!existsSync(join(root, m[1]))) problems.push(`${ref}: no such file`);
      else if (!rustTests(m[1]).has(m[2])) problems.push(`${ref}: no test fn ${m[2]} in ${m[1]}`);
    } else if ((m = ref.match(/^(\w+)::(\w+)$/))) {
      const path = `tests/integration/${m[1]}.rs`;
      if (!existsSync(join(root, path))) problems.push(`${ref}: no ${path}`);
      else if (!read("tests/integration/main.rs").match(new RegExp(`^mod ${m[1]};`, "m")))
        problems.push(`${ref}: ${path} is not a module of the integration binary`);
      else if (!rustTests(path).has(m[2])) problems.push(`${ref}: no test fn ${m[2]} in ${path}`);
    } else if ((m = ref.match(/^(scripts\/[\w.-]+)$/))) {
      if (!existsSync(join(root, m[1]))) problems.push(`${ref}: no such script`);
      else if (!testSh.includes(m[1])) problems.push(`${ref}: not run by scripts/test.sh`);
    } else {
      problems.push(`${ref}: not a test reference (module::name, src/file.rs::name, tests/….mjs: "text", scripts/…)`);
    }
  }
}

if (rows === 0) problems.push("docs/claims.md has no claim rows");
if (problems.length > 0) {
  console.error(`docs/claims.md: ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`docs/claims.md: ${rows} claims, ${refs} test references, all found`);
