// The signing snippets of docs/identity.md, run as written (Node with jose, Python with PyJWT,
// Java with the JDK alone): each one's assertion must be accepted by the real `baton` for the page
// it names, and name the same customer as `baton identity token` does. A missing toolchain fails
// the test; nothing is skipped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const baton = process.env.BATON_BIN ?? join(root, "target", "debug", "baton");
const python =
  process.env.BATON_IDENTITY_PYTHON ?? join(homedir(), ".cache", "baton", "identity-py", "bin", "python");
const PAGE = "https://shop.example.com";
// A quote, a backslash and non-ASCII: the snippets must encode `sub` as JSON, not paste it.
const SUBJECTS = ["customer-42", 'o"brien\\Zoë 📦'];

/** The fenced blocks of docs/identity.md in `lang`. */
function blocks(lang) {
  const doc = readFileSync(join(root, "docs", "identity.md"), "utf8");
  return [...doc.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]);
}

function run(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], ...opts }).trim();
}

// Inside the repository, so that the Node snippet finds `jose` in node_modules.
mkdirSync(join(root, "target"), { recursive: true });
const dir = mkdtempSync(join(root, "target", "identity-snippets-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const keygen = run(baton, ["identity", "keygen"]);
const kid = keygen.match(/^kid = "(.+)"$/m)[1];
const secret = keygen.match(/^secret = "(.+)"$/m)[1];
const config = join(dir, "baton.toml");
writeFileSync(
  config,
  `[server]\npublic_origin = "https://broker.example.com"\n[trust]\norigins = ["${PAGE}"]\n` +
    `[handoff]\nenabled = false\n${keygen}\n`,
);
const env = { ...process.env, BATON_IDENTITY_KID: kid, BATON_IDENTITY_SECRET: secret };

/** baton's verdict on `token` for the shop's page. */
function verify(token) {
  try {
    return JSON.parse(run(baton, ["identity", "verify", "--config", config, "--page", PAGE, "-"], { input: token }));
  } catch (e) {
    return JSON.parse(e.stdout);
  }
}

/** The subject hash of `sub`, by an assertion baton mints itself. */
function expected(sub) {
  const token = run(baton, ["identity", "token", "--config", config, "--iss", PAGE, "--sub", sub]);
  const verdict = verify(token);
  assert.equal(verdict.valid, true, JSON.stringify(verdict));
  return verdict.subject;
}

const signers = {
  node(sub) {
    const [code] = blocks("js");
    const file = join(dir, "sign.mjs");
    writeFileSync(file, `${code}\nconsole.log(await identityAssertion(process.argv[2], process.argv[3]));\n`);
    return run(process.execPath, [file, sub, PAGE], { env });
  },
  python(sub) {
    const [code] = blocks("python");
    const file = join(dir, "sign.py");
    writeFileSync(file, `${code}\nimport sys\nprint(identity_assertion(sys.argv[1], sys.argv[2]))\n`);
    return run(python, [file, sub, PAGE], { env });
  },
  java(sub) {
    const [code] = blocks("java");
    const file = join(dir, "IdentityAssertion.java");
    writeFileSync(file, code);
    return run("java", [file, sub, PAGE], { env });
  },
};

for (const [language, sign] of Object.entries(signers)) {
  test(`docs/identity.md's ${language} snippet signs assertions baton accepts`, () => {
    for (const sub of SUBJECTS) {
      const token = sign(sub);
      const verdict = verify(token);
      assert.equal(verdict.valid, true, `${sub}: ${JSON.stringify(verdict)}`);
      assert.equal(verdict.kid, kid);
      assert.equal(verdict.issuer, PAGE);
      assert.equal(verdict.subject, expected(sub), `${sub}: the same customer as baton's own`);
      assert.ok(verdict.expires_at > Date.now() / 1000, "expires in the future");
    }
  });
}
