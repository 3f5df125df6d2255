// Minifies the browser sources in js/ into static/ (or another directory), the files the Rust
// binary embeds at compile time. `node scripts/build-js.mjs [outdir]`.
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { minify } from "terser";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Source in js/ -> output name in the static directory. */
export const FILES = { "cookie-provider.js": "cookie-provider.js", "iframe.js": "iframe.js" };

const OPTIONS = {
  ecma: 2020,
  module: false,
  compress: { passes: 3, unsafe_arrows: true },
  mangle: true,
  format: { comments: false },
};

/** Minifies one source file; returns the output text. */
export async function minifyFile(name) {
  const src = await readFile(path.join(root, "js", name), "utf8");
  const out = await minify({ [name]: src }, OPTIONS);
  return out.code + "\n";
}

/** Builds every file into `outDir`; returns {name: text}. */
export async function build(outDir = path.join(root, "static")) {
  await mkdir(outDir, { recursive: true });
  const built = {};
  for (const [src, dst] of Object.entries(FILES)) {
    built[dst] = await minifyFile(src);
    await writeFile(path.join(outDir, dst), built[dst]);
  }
  return built;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outDir = path.resolve(process.argv[2] ?? path.join(root, "static"));
  const built = await build(outDir);
  for (const [name, text] of Object.entries(built)) console.log(`${name}: ${text.length} bytes -> ${outDir}`);
}
