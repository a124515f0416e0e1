// Builds web/dist: index.html, assets/app.js and assets/app.css. Deterministic (no timestamps, no absolute
// paths, no source maps), since CI rebuilds it and fails when the result differs from the committed one.
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { build } from "esbuild";

const dist = new URL("./dist/", import.meta.url);
await rm(dist, { recursive: true, force: true });
await mkdir(new URL("assets/", dist), { recursive: true });

const common = { bundle: true, minify: true, legalComments: "none", charset: "utf8", write: false, logLevel: "warning" };
const [script, style] = await Promise.all([
  build({ ...common, entryPoints: ["src/main.ts"], format: "esm", target: "es2022", platform: "browser" }),
  build({ ...common, entryPoints: ["src/app.css"] }),
]);

const hash = (bytes) => createHash("sha256").update(bytes).digest("hex").slice(0, 12);
const js = script.outputFiles[0].contents;
const css = style.outputFiles[0].contents;
await writeFile(new URL("assets/app.js", dist), js);
await writeFile(new URL("assets/app.css", dist), css);
const html = (await readFile(new URL("./index.html", import.meta.url), "utf8"))
  .replace("%APP_JS_HASH%", hash(js))
  .replace("%APP_CSS_HASH%", hash(css));
await writeFile(new URL("index.html", dist), html);
console.log(`web/dist: app.js ${js.length} bytes, app.css ${css.length} bytes`);
