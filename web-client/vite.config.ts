import { defineConfig } from "vitest/config";

// The Rust server serves dist/ and the WebSocket on one origin. In `npm run dev`
// Vite proxies /ws and /api to a server on GRIDCAP_DEV_SERVER (default :8080).
const backend = process.env.GRIDCAP_DEV_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // Two pages: the game (index.html) and the operators' /admin page, which
    // only a node's admin listener serves.
    rollupOptions: { input: { main: "index.html", admin: "admin.html" } },
  },
  server: {
    proxy: {
      "/ws": { target: backend, ws: true },
      "/api": { target: backend },
    },
  },
  test: { include: ["test/**/*.test.ts"], environment: "node" },
});
