// Builds the browser sources in js/ into static/ (or another directory), the files the Rust binary
// embeds at compile time and the npm package: each script with `// @include NAME` lines replaced
// by js/NAME (the rules both scripts share, written once), wrapped as its output needs, then
// minified; the hand-written types and the package manifest copied as they are.
// `node scripts/build-js.mjs [outdir]`.
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { minify } from "terser";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** What the library gives a page, as globals (classic script) or exports (ES module). */
const GLOBALS = "w.CookieProvider = CookieProvider;\nw.initCookieProviderExtension = initCookieProviderExtension;\nw.Baton = { connect, BatonError };";
const EXPORTS = "export { CookieProvider, initCookieProviderExtension, connect, BatonError };";

/** Outputs: name -> [source in js/, wrap(bundled source), is an ES module]. */
export const SCRIPTS = {
  "cookie-provider.js": ["cookie-provider.js", (src) => `(() => {\n"use strict";\n${src}\n${GLOBALS}\n})();`, false],
  "baton.mjs": ["cookie-provider.js", (src) => `${src}\n${EXPORTS}`, true],
  "iframe.js": ["iframe.js", (src) => src, false],
};
/** Files in js/ copied as they are (the package manifest, its readme and the types). */
export const COPIED = ["cookie-provider.d.ts", "baton.d.mts", "package.json", "README.md"];

const options = (module) => ({
  ecma: 2020,
  module,
  compress: { passes: 3, unsafe_arrows: true },
  mangle: true,
  format: { comments: false },
});

/** js/`name` with its includes in place, unminified. */
export async function bundle(name) {
  const src = await readFile(path.join(root, "js", name), "utf8");
  const parts = await Promise.all(
    src.split(/^[ \t]*\/\/ @include ([\w.-]+)[ \t]*$/m).map((part, i) => (i % 2 ? readFile(path.join(root, "js", part), "utf8") : part)),
  );
  return parts.join("");
}

/** Output `name`, bundled and wrapped but not minified (what tests run as "the source"). */
export async function source(name) {
  const [src, wrap] = SCRIPTS[name];
  return wrap(await bundle(src));
}

/** Output `name`, bundled, wrapped and minified. */
export async function minifyFile(name) {
  const out = await minify({ [name]: await source(name) }, options(SCRIPTS[name][2]));
  return out.code + "\n";
}

/** Builds every file into `outDir`; returns {name: text}. */
export async function build(outDir = path.join(root, "static")) {
  await mkdir(outDir, { recursive: true });
  const built = {};
  for (const name of Object.keys(SCRIPTS)) built[name] = await minifyFile(name);
  for (const name of COPIED) built[name] = await readFile(path.join(root, "js", name), "utf8");
  for (const [name, text] of Object.entries(built)) await writeFile(path.join(outDir, name), text);
  return built;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outDir = path.resolve(process.argv[2] ?? path.join(root, "static"));
  const built = await build(outDir);
  for (const [name, text] of Object.entries(built)) console.log(`${name}: ${text.length} bytes -> ${outDir}`);
}
