// Starts an ephemeral local stack (chat-local up --ephemeral), runs
// test/live.test.ts against it with the client in Node.js, and stops the
// stack. Build the stack first: `cargo build --workspace --bins` (or give
// its binary in CHAT_LOCAL).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, "target");
const bin = process.env.CHAT_LOCAL ?? join(targetDir, "debug", "chat-local");
if (!existsSync(bin)) {
  console.error(`${bin} is missing: run \`cargo build --workspace --bins\` first (or set CHAT_LOCAL).`);
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "chat-client-e2e-"));
const readyFile = join(dir, "stack.json");
// The stack stops when its stdin closes, so it dies with this script.
const stack = spawn(bin, ["up", "--ephemeral", "--exit-on-stdin-eof", "--ready-file", readyFile], {
  cwd: root,
  stdio: ["pipe", "ignore", "inherit"],
});
const stop = () => {
  stack.stdin.end();
  rmSync(dir, { recursive: true, force: true });
};
stack.on("exit", (code) => {
  if (!existsSync(readyFile)) {
    console.error(`chat-local exited (${code}) before it was ready`);
    process.exit(1);
  }
});

const deadline = Date.now() + 120_000;
while (!existsSync(readyFile) || readFileSync(readyFile, "utf8").trim() === "") {
  if (Date.now() > deadline) {
    console.error("the stack was not ready within 120 s");
    stop();
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 250));
}
const vitest = spawn("npx", ["vitest", "run", "test/live.test.ts"], {
  cwd: fileURLToPath(new URL("..", import.meta.url)),
  stdio: "inherit",
  env: { ...process.env, CHAT_STACK_FILE: readyFile },
});
vitest.on("exit", (code) => {
  stop();
  process.exit(code ?? 1);
});
