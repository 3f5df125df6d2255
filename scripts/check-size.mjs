#!/usr/bin/env node
// Keeps the product's Rust readable in one sitting: no file under src/ holds more than 1,000
// lines of production code and no function more than 80 lines. Test modules (`#[cfg(test)]`)
// do not count towards a file's size; they are not production code and live beside what they
// test on purpose. A function that is a table of messages may be longer: it is named in
// ALLOWED with the reason. Prints the largest figures; exits 1 listing every file and function
// over its limit.
//
// The scan blanks comments, string and character literals first, so braces in them never
// count, then matches braces: enough for rustfmt-formatted code, which is all src/ holds.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(fileURLToPath(import.meta.url), "..", "..");
const MAX_FILE_LINES = 1000;
const MAX_FN_LINES = 80;
/** `path::fn` → why it may be longer than MAX_FN_LINES (tables of messages only). */
const ALLOWED = {
  "src/origin.rs::explain": "a table of messages: one sentence per kind of bad trusted-origin entry",
};

/** Every .rs file under `dir`. */
function rustFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return rustFiles(p);
    return e.name.endsWith(".rs") ? [p] : [];
  });
}

/** `src` with comments and the insides of string and char literals replaced by spaces. */
export function blank(src) {
  const out = src.split("");
  const wipe = (from, to) => {
    for (let k = from; k < to; k++) if (out[k] !== "\n") out[k] = " ";
  };
  let i = 0;
  while (i < src.length) {
    const rest = src.slice(i, i + 3);
    if (rest.startsWith("//")) {
      const end = src.indexOf("\n", i);
      const stop = end < 0 ? src.length : end;
      wipe(i, stop);
      i = stop;
    } else if (rest.startsWith("/*")) {
      let depth = 0;
      let j = i;
      do {
        if (src.startsWith("/*", j)) (depth++, (j += 2));
        else if (src.startsWith("*/", j)) (depth--, (j += 2));
        else j++;
      } while (depth > 0 && j < src.length);
      wipe(i, j);
      i = j;
    } else if (/^(b?r#*")/.test(src.slice(i, i + 40)) && !/\w/.test(src[i - 1] ?? "")) {
      const m = /^(b?r)(#*)"/.exec(src.slice(i, i + 40));
      const close = `"${m[2]}`;
      const end = src.indexOf(close, i + m[0].length);
      const stop = end < 0 ? src.length : end + close.length;
      wipe(i + m[0].length, stop - close.length);
      i = stop;
    } else if (src[i] === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === "\\" ? 2 : 1;
      wipe(i + 1, j);
      i = j + 1;
    } else if (src[i] === "'") {
      // A char literal ('x', '\n', '\u{7f}', '{'), not a lifetime ('a).
      const m = /^'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'/.exec(src.slice(i, i + 12));
      if (m) {
        wipe(i + 1, i + m[0].length - 1);
        i += m[0].length;
      } else i++;
    } else i++;
  }
  return out.join("");
}

/** Index just past the brace that closes the one at `open`. */
function closing(code, open) {
  let depth = 0;
  for (let k = open; k < code.length; k++) {
    if (code[k] === "{") depth++;
    else if (code[k] === "}" && --depth === 0) return k + 1;
  }
  return code.length;
}

const lineAt = (code, index) => code.slice(0, index).split("\n").length;

/** Production lines and functions (name, first line, lines) of one file. */
export function measure(src) {
  const code = blank(src);
  // Test modules and other `#[cfg(test)]` items: not production code.
  const skipped = [];
  for (const m of code.matchAll(/#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?(?:mod|fn|impl|use)\b/g)) {
    const brace = code.indexOf("{", m.index);
    const semi = code.indexOf(";", m.index);
    const end = semi >= 0 && (brace < 0 || semi < brace) ? semi + 1 : closing(code, brace);
    skipped.push([m.index, end]);
  }
  const inTests = (index) => skipped.some(([a, b]) => index >= a && index < b);
  const testLines = skipped.reduce((n, [a, b]) => n + lineAt(code, b) - lineAt(code, a) + 1, 0);
  const lines = src.split("\n").length - (src.endsWith("\n") ? 1 : 0) - testLines;
  const fns = [];
  for (const m of code.matchAll(/\bfn\s+(\w+)/g)) {
    if (inTests(m.index)) continue;
    // The body starts at the first `{` after the signature; a `;` first is a declaration.
    const rest = code.slice(m.index);
    const body = rest.search(/[{;]/);
    if (body < 0 || rest[body] === ";") continue;
    const open = m.index + body;
    const first = lineAt(code, m.index);
    fns.push({ name: m[1], line: first, lines: lineAt(code, closing(code, open) - 1) - first + 1 });
  }
  return { lines, fns };
}

function main() {
  const problems = [];
  const files = [];
  const fns = [];
  for (const file of rustFiles(join(root, "src"))) {
    const path = relative(root, file);
    const { lines, fns: found } = measure(readFileSync(file, "utf8"));
    files.push({ path, lines });
    if (lines > MAX_FILE_LINES) problems.push(`${path}: ${lines} production lines (at most ${MAX_FILE_LINES})`);
    for (const f of found) {
      const key = `${path}::${f.name}`;
      fns.push({ key, ...f });
      if (f.lines > MAX_FN_LINES && !ALLOWED[key]) {
        problems.push(`${path}:${f.line}: fn ${f.name} is ${f.lines} lines (at most ${MAX_FN_LINES})`);
      }
    }
  }
  const top = (list, n) => list.sort((a, b) => b.lines - a.lines).slice(0, n);
  console.log(`${files.length} files under src/; the largest (production lines):`);
  for (const f of top(files, 3)) console.log(`  ${f.lines} ${f.path}`);
  console.log(`${fns.length} functions; the longest (lines):`);
  for (const f of top(fns, 3)) console.log(`  ${f.lines} ${f.key}${ALLOWED[f.key] ? " (allowed: " + ALLOWED[f.key] + ")" : ""}`);
  if (problems.length) {
    console.error(`FAIL:\n  ${problems.join("\n  ")}`);
    process.exit(1);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
