import { defineConfig } from "vite";

// The manager serves the console under a strict CSP (no inline script or
// style, no data: URLs), so the build must emit only external files.
export default defineConfig({
  build: {
    // Lets a caller (packaging, tests) build elsewhere without touching web/dist.
    outDir: process.env.MAMORI_CONSOLE_OUT || "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    // The polyfill is an inline script, which the CSP would block.
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
});
