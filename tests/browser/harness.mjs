// What the browser tests run against: an ephemeral local stack (chat-local),
// the built demo served by `vite preview` pointing at it, and headless
// Chromium. Every process started here is stopped when the tests end, pass
// or fail, and when this process exits.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, "target");
export const CHAT_LOCAL = process.env.CHAT_LOCAL ?? path.join(TARGET, "debug", "chat-local");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
/** Screenshots and other things to look at after a run. */
export const ARTIFACTS = path.join(TARGET, "browser");

const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});
// Interrupted (Ctrl-C, a runner's timeout): still leave nothing running.
for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => process.exit(130));

function track(child, name) {
  children.add(child);
  const log = [];
  const keep = (chunk) => {
    log.push(chunk.toString());
    if (log.length > 200) log.shift();
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal)));
  child.exited.then(() => children.delete(child));
  child.tail = () => `${name} said:\n${log.join("").split("\n").slice(-40).join("\n")}`;
  return child;
}

async function waitFor(what, check, timeoutMs, child) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (child && child.exitCode !== null) throw new Error(`${what}: the process exited (${child.exitCode})\n${child.tail()}`);
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs / 1000} s${child ? `\n${child.tail()}` : ""}`);
    await sleep(100);
  }
}

/** A local stack on free ports; `stop()` closes its stdin, which ends it (--exit-on-stdin-eof). */
export async function startStack() {
  if (!existsSync(CHAT_LOCAL)) throw new Error(`${CHAT_LOCAL} is missing: build it first (cargo build --workspace --bins --examples)`);
  const dir = mkdtempSync(path.join(tmpdir(), "chat-browser-"));
  const readyFile = path.join(dir, "ready.json");
  const child = track(
    spawn(CHAT_LOCAL, ["up", "--ephemeral", "--exit-on-stdin-eof", "--ready-file", readyFile], {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
    }),
    "chat-local",
  );
  try {
    await waitFor("chat-local up", () => existsSync(readyFile), 180_000, child);
  } catch (error) {
    child.kill("SIGKILL");
    throw error;
  }
  const ready = JSON.parse(readFileSync(readyFile, "utf8"));
  return {
    ...ready,
    readyFile,
    async stop() {
      child.stdin.end();
      const stopped = await Promise.race([child.exited, sleep(30_000).then(() => null)]);
      if (stopped === null) child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The built demo (demo/dist) served by `vite preview`, signing in against the stack in `readyFile`. */
export async function startDemo(readyFile) {
  const demo = path.join(ROOT, "demo");
  if (!existsSync(path.join(demo, "dist", "index.html"))) throw new Error("demo/dist is missing: npm run build -w demo");
  const port = await freePort();
  const vite = path.join(ROOT, "node_modules", "vite", "bin", "vite.js");
  const child = track(
    spawn(process.execPath, [vite, "preview", "--port", String(port), "--strictPort"], {
      cwd: demo,
      env: { ...process.env, CHAT_READY_FILE: readyFile },
      stdio: ["ignore", "pipe", "pipe"],
    }),
    "vite preview",
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    "vite preview",
    () => fetch(`${url}/dev/session`).then((r) => r.ok, () => false),
    60_000,
    child,
  );
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await Promise.race([child.exited, sleep(5_000)]);
      child.kill("SIGKILL");
    },
  };
}

export async function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (make setup does)`);
  // --no-sandbox: Chromium's sandbox refuses to start as root, as tests run in CI.
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
}

/** A REST call as a seeded user of the stack, for setting up what a test needs. */
export async function api(stack, user, method, route, body) {
  const res = await fetch(`${stack.http_url}${route}`, {
    method,
    headers: {
      authorization: `Bearer ${stack.users[user].token}`,
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route} as ${user}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Every live WebSocket of a user, as the server's registry holds them. */
export async function connectionsOf(stack, user) {
  return (await rows(stack, "connections", `user_id=eq.${stack.users[user].id}&select=connection_id`)).map((row) => row.connection_id);
}

/** The same waits for every test: long enough for a slow machine, short enough to fail rather than hang. */
export const WAIT = { timeout: 20_000 };

/** Polls `check` until it holds; fails after WAIT. */
export async function until(what, check) {
  const deadline = Date.now() + WAIT.timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${WAIT.timeout / 1000} s`);
    await sleep(200);
  }
}

/**
 * A page of the demo signed in as `user`, its socket open, in a browser
 * context of its own. `prepare(context)` runs before the page opens (to grant
 * permissions, add init scripts).
 */
export async function signIn({ browser, demo, stack }, user, { viewport = { width: 1100, height: 700 }, query = "", prepare } = {}) {
  const context = await browser.newContext({ viewport });
  await prepare?.(context);
  const net = await networkSwitch(context, stack);
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(`${demo.url}/${query}`);
  await page.getByTestId(`signin-${user}`).click();
  await page.locator("[data-testid=connection-state][data-state=connected]").waitFor(WAIT);
  return { context, page, problems, net, received: net.received };
}

/**
 * The network between a browser context and the stack, as a test can break
 * it: the context's WebSockets pass through a proxy (Playwright's WebSocket
 * routing) that `down()` cuts, closing both ends, and that refuses new ones
 * until `up()`; HTTP fails meanwhile (the context is offline). `up()` brings
 * the context back online, which fires the page's `online` event.
 * `received` lists the frames the server sent.
 */
export async function networkSwitch(context, stack) {
  let offline = false;
  const open = new Set();
  // What the server sent, to explain a failure.
  const received = [];
  await context.routeWebSocket(
    (url) => url.href.startsWith(stack.websocket_url),
    (ws) => {
      if (offline) return ws.close({ code: 4000, reason: "offline in the test" });
      const server = ws.connectToServer();
      server.onMessage((frame) => {
        received.push(`${new Date().toISOString()} ${frame}`);
        ws.send(frame);
      });
      open.add(server);
    },
  );
  return {
    received,
    async down() {
      offline = true;
      await context.setOffline(true);
      for (const server of open) await server.close({ code: 4000, reason: "network down in the test" });
      open.clear();
    },
    async up() {
      offline = false;
      await context.setOffline(false);
    },
  };
}

/** Rows of a table as the service role reads them through PostgREST (`query`: PostgREST's filters and select). */
export async function rows(stack, table, query) {
  const res = await fetch(`${stack.postgrest_url}/${table}?${query}`, {
    headers: { apikey: stack.service_role_key, authorization: `Bearer ${stack.service_role_key}` },
  });
  if (!res.ok) throw new Error(`${table}?${query}: ${res.status} ${await res.text()}`);
  return res.json();
}
