// Bundle dist/index.js into one minified script for pages (window.TelemetryEmitter) and
// report its minified+gzipped size; --report prints it as JSON too.
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
