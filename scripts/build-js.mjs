// Builds the browser sources in js/ into static/ (or another directory), the files the Rust binary
// embeds at compile time and the npm package: each script bundled (its local ES imports, such as
// the rules of js/shared.js that both scripts share, put in place), wrapped as its output needs
// (a classic script in a closure, or an ES module), then minified; the hand-written types and the
// package manifest copied as they are. `node scripts/build-js.mjs [outdir]`.
//
// The bundler is a dozen lines of our own rather than esbuild or rollup: the sources import one
// module of plain declarations, terser already minifies (and refuses a name declared twice, so a
// clash between an imported module and its importer fails the build), and a bundler's module
// wrappers would only cost bytes of the size budget. It takes only
// `import { a, b } from "./file.js";` on a line of its own, and `export` before a top-level
// `const`, `let`, `function` or `class`; any other import or export fails the build.
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { minify } from "terser";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** What the library gives a page, as globals (classic script) or exports (ES module). */
const GLOBALS = "w.CookieProvider = CookieProvider;\nw.initCookieProviderExtension = initCookieProviderExtension;\nw.Baton = { connect, BatonError };";
const EXPORTS = "export { CookieProvider, initCookieProviderExtension, connect, BatonError };";

/** A classic script: `src` in a strict closure, so that nothing but `tail` reaches the page's globals. */
const closure = (src, tail = "") => `(() => {\n"use strict";\n${src}\n${tail}\n})();`;

/** Outputs: name -> [source in js/, wrap(bundled source), is an ES module]. */
export const SCRIPTS = {
  "cookie-provider.js": ["cookie-provider.js", (src) => closure(src, GLOBALS), false],
  "baton.mjs": ["cookie-provider.js", (src) => `${src}\n${EXPORTS}`, true],
  "iframe.js": ["iframe.js", (src) => closure(src), false],
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

/** A local import, alone on its line: the names and the file in js/. */
const IMPORT = /^import \{([\w\s,]*)\} from "\.\/([\w.-]+\.js)";?[ \t]*$/gm;
/** `export` before a top-level declaration: the name. */
const EXPORT = /^export (?=(?:const|let|function|class) (\w+))/gm;

/**
 * js/`name` with each module it imports put in place of its import line (once, however often it
 * is imported) and the `export` keywords of the modules put in place dropped; unminified.
 * @param {string} name
 * @param {{dir?: string, done?: Set<string>}} [opts] `dir`: where the sources are (js/);
 *   `done`: modules already in the bundle
 * @returns {Promise<string>}
 */
export async function bundle(name, { dir = path.join(root, "js"), done = new Set([name]) } = {}) {
  const only = (what) => new Error(`${name}: the build bundles only \`import { names } from "./file.js";\` and \`export const\`: ${what}`);
  let src = await readFile(path.join(dir, name), "utf8");
  for (const [line, names, file] of [...src.matchAll(IMPORT)]) {
    const dep = await readFile(path.join(dir, file), "utf8");
    const exported = new Set([...dep.matchAll(EXPORT)].map((m) => m[1]));
    for (const n of names.split(",").map((n) => n.trim()).filter(Boolean)) {
      if (!/^\w+$/.test(n)) throw only(line); // `a as b`
      if (!exported.has(n)) throw new Error(`${name} imports ${n}, which ${file} does not export`);
    }
    const inlined = done.has(file) ? "" : (done.add(file), (await bundle(file, { dir, done })).replace(EXPORT, ""));
    src = src.replace(line, () => inlined);
  }
  const left = /^[ \t]*(?:import\b|export\b).*/m.exec(src.replace(EXPORT, ""));
  if (left) throw only(left[0]);
  return src;
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
