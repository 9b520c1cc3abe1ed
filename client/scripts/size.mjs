// The browser bundle's size: each entry bundled and minified by esbuild (React
// left out, as the app provides it), then gzipped.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";

for (const entry of ["dist/index.js", "dist/react.js"]) {
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    external: ["react", "react/jsx-runtime"],
    write: false,
  });
  const code = out.outputFiles[0].contents;
  console.log(`${entry}: ${(code.length / 1024).toFixed(1)} KiB minified, ${(gzipSync(code, { level: 9 }).length / 1024).toFixed(1)} KiB gzip`);
}
