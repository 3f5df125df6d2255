// scripts/build-js.mjs's bundler, on sources of its own in a temporary directory: a local named
// import is put in place once, however many modules import it, without its `export` keywords, and
// every other import or export form fails the build instead of shipping a script that would not
// run as a classic script.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import vm from "node:vm";
import { bundle } from "../../scripts/build-js.mjs";

/** Bundles `main.js` from `files` ({name: source}) written to a fresh directory. */
async function bundleOf(files) {
  const dir = await mkdtemp(path.join(tmpdir(), "baton-bundle-"));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
    return await bundle("main.js", { dir });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const RULES = 'export const KEY = /^k$/;\nexport function allowed(o) {\n  return o === "a";\n}\nconst hidden = 1;\n';

test("bundle: an imported module is put in place once, without export, and runs as a classic script", async () => {
  const out = await bundleOf({
    "rules.js": RULES,
    "other.js": 'import { KEY } from "./rules.js";\nexport const other = () => KEY.test("k");\n',
    "main.js": 'import { KEY, allowed } from "./rules.js";\nimport { other } from "./other.js";\n[allowed("a"), KEY.source, other()];\n',
  });
  assert.equal(out.match(/const KEY/g).length, 1, out);
  assert.doesNotMatch(out, /^\s*(import|export)\b/m, out);
  assert.deepEqual([...vm.runInNewContext(out)], [true, "^k$", true]);
});

test("bundle: importing a name the module does not export fails the build", async () => {
  await assert.rejects(bundleOf({ "rules.js": RULES, "main.js": 'import { hidden } from "./rules.js";\n' }), /main\.js imports hidden, which rules\.js does not export/);
});

for (const [form, main] of [
  ["a default import", 'import rules from "./rules.js";\n'],
  ["a renamed import", 'import { KEY as K } from "./rules.js";\n'],
  ["a package import", 'import { KEY } from "rules";\n'],
  ["a default export", "export default 1;\n"],
  ["an export list", "const a = 1;\nexport { a };\n"],
]) {
  test(`bundle: ${form} fails the build`, async () => {
    await assert.rejects(bundleOf({ "rules.js": RULES, "main.js": main }), /the build bundles only/);
  });
}
