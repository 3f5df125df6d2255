// Builds the browser sources in js/ into static/ (or another directory), the files the Rust binary
// embeds at compile time: each script with `// @include NAME` lines replaced by js/NAME (the rules
// both scripts share, written once), then minified; the hand-written types copied as they are.
// `node scripts/build-js.mjs [outdir]`.
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { minify } from "terser";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Scripts in js/, minified into the static directory under the same name. */
export const SCRIPTS = ["cookie-provider.js", "iframe.js"];
/** Files in js/ copied as they are. */
export const COPIED = ["cookie-provider.d.ts"];

const OPTIONS = {
  ecma: 2020,
  module: false,
  compress: { passes: 3, unsafe_arrows: true },
  mangle: true,
  format: { comments: false },
};

/** js/`name` with its includes in place, unminified (what tests run as "the source"). */
export async function bundle(name) {
  const src = await readFile(path.join(root, "js", name), "utf8");
  const parts = await Promise.all(
    src.split(/^[ \t]*\/\/ @include ([\w.-]+)[ \t]*$/m).map((part, i) => (i % 2 ? readFile(path.join(root, "js", part), "utf8") : part)),
  );
  return parts.join("");
}

/** One script, bundled and minified; returns the output text. */
export async function minifyFile(name) {
  const out = await minify({ [name]: await bundle(name) }, OPTIONS);
  return out.code + "\n";
}

/** Builds every file into `outDir`; returns {name: text}. */
export async function build(outDir = path.join(root, "static")) {
  await mkdir(outDir, { recursive: true });
  const built = {};
  for (const name of SCRIPTS) built[name] = await minifyFile(name);
  for (const name of COPIED) built[name] = await readFile(path.join(root, "js", name), "utf8");
  for (const [name, text] of Object.entries(built)) await writeFile(path.join(outDir, name), text);
  return built;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outDir = path.resolve(process.argv[2] ?? path.join(root, "static"));
  const built = await build(outDir);
  for (const [name, text] of Object.entries(built)) console.log(`${name}: ${text.length} bytes -> ${outDir}`);
}
