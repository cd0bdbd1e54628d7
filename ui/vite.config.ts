import { defineConfig } from "vitest/config";

// Builds into the Python package so `pip install` needs no Node. File names carry content hashes and
// the build is deterministic, so CI can rebuild and `git diff --exit-code src/mltrail/server/static`
// catches a stale bundle.
export default defineConfig({
  base: "./",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../src/mltrail/server/static",
    emptyOutDir: true,
    assetsDir: "static-files",
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
  },
  // `npm run dev`: the API comes from a running server (MLTRAIL_DEV_SERVER, default http://127.0.0.1:5000).
  server: {
    proxy: Object.fromEntries(
      ["/ajax-api", "/api", "/get-artifact"].map((p) => [p, process.env.MLTRAIL_DEV_SERVER ?? "http://127.0.0.1:5000"]),
    ),
  },
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
