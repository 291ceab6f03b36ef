// Bundle dist/index.js into one minified script for pages (window.TelemetryEmitter) and
// report its minified+gzipped size; the build fails above GZIP_BOUND (the 6 KB aim).
import { build } from "esbuild";
import { readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";

await build({
  entryPoints: ["dist/index.js"],
  bundle: true,
  minify: true,
  format: "iife",
  globalName: "TelemetryEmitter",
  target: "es2020",
  outfile: "dist/emitter.min.js",
});
const minified = readFileSync("dist/emitter.min.js");
const gzipped = gzipSync(minified, { level: 9 }).length;
const report = { minified_bytes: minified.length, gzipped_bytes: gzipped };
writeFileSync("dist/size.json", JSON.stringify(report) + "\n");
console.log(`emitter.min.js: ${minified.length} bytes minified, ${gzipped} bytes gzipped`);
const GZIP_BOUND = 6 * 1024;
if (gzipped >= GZIP_BOUND) {
  console.error(`emitter.min.js is ${gzipped} bytes gzipped: the bound is ${GZIP_BOUND}`);
  process.exit(1);
}
