import path from "node:path";
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";
import { devSession } from "./dev-session";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");

// Two pages: the chat (index.html) and the API reference (api.html).
// The ports are the defaults of `make dev`; the browser tests pass their own.
export default defineConfig({
  plugins: [react(), devSession(root)],
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  preview: { host: "127.0.0.1", port: 5173, strictPort: true },
  build: {
    rollupOptions: {
      input: { chat: path.join(here, "index.html"), api: path.join(here, "api.html") },
    },
    // Swagger UI is one large bundle, loaded by api.html alone.
    chunkSizeWarningLimit: 2000,
  },
});
