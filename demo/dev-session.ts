// Dev-only sign-in for the demo: the Vite dev and preview servers answer
//   GET /dev/session      {http_url, websocket_url, users}: where the stack is
//                         and whom one can sign in as
//   GET /dev/token/<user> an access token for a seeded user (or a user id),
//                         minted by `chat-local token`
// This lives in the Vite config, not in the app: a production build has no
// way to mint tokens, and the demo is never part of the deployed stack.
//
// Which stack: the one whose ready file (`chat-local up --ready-file`) is at
// CHAT_READY_FILE, by default .local/ready.json, where `make dev` has it
// written. Everything comes from there: URLs, seeded users, the state dir
// whose JWT secret signs tokens.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import type { Connect, Plugin } from "vite";

const run = promisify(execFile);

// A username or a user's UUID, as `chat-local token` takes them.
const USER = /^[A-Za-z0-9_-]{1,64}$/;

export interface StackInfo {
  httpUrl: string;
  websocketUrl: string;
  stateDir: string;
  users: string[];
}

function readyFile(root: string): string {
  return path.resolve(root, process.env.CHAT_READY_FILE ?? path.join(".local", "ready.json"));
}

/** Read at each request: the stack may have been restarted since. */
export function readStack(root: string): StackInfo {
  const file = readyFile(root);
  let ready: Record<string, unknown>;
  try {
    ready = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`no local stack: ${file} is unreadable (${(error as Error).message}); start one with make dev`);
  }
  const field = (name: string): string => {
    const value = ready[name];
    if (typeof value !== "string") throw new Error(`${file}: no ${name}`);
    return value;
  };
  return {
    httpUrl: field("http_url"),
    websocketUrl: field("websocket_url"),
    stateDir: field("state_dir"),
    users: Object.keys((ready.users as Record<string, unknown> | undefined) ?? {}),
  };
}

/** The chat-local that `make` builds: CHAT_LOCAL, else the cargo target dir's debug build. */
function chatLocalBinary(root: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.CHAT_LOCAL) return env.CHAT_LOCAL;
  const target = env.CARGO_TARGET_DIR ? path.resolve(root, env.CARGO_TARGET_DIR) : path.join(root, "target");
  return path.join(target, "debug", "chat-local");
}

async function mintToken(root: string, stack: StackInfo, user: string): Promise<string> {
  const args = ["token", user, "--state-dir", stack.stateDir];
  const { stdout } = await run(chatLocalBinary(root), args, { cwd: root, timeout: 30_000 });
  return stdout.trim();
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader("content-type", "application/json");
  res.setHeader("cache-control", "no-store");
  res.end(JSON.stringify(body));
}

function middleware(root: string): Connect.NextHandleFunction {
  return (req: IncomingMessage, res: ServerResponse, next: Connect.NextFunction) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const token = /^\/dev\/token\/([^/]+)$/.exec(url.pathname);
    if (url.pathname !== "/dev/session" && !token) return next();
    let stack: StackInfo;
    try {
      stack = readStack(root);
    } catch (error) {
      return answer(res, 503, { error: (error as Error).message });
    }
    if (!token) {
      return answer(res, 200, { http_url: stack.httpUrl, websocket_url: stack.websocketUrl, users: stack.users });
    }
    const user = decodeURIComponent(token[1]);
    if (!USER.test(user)) return answer(res, 400, { error: "a user is a username or a user id (letters, digits, - and _)" });
    mintToken(root, stack, user).then(
      (value) => answer(res, 200, { token: value }),
      (error: Error & { stderr?: string }) =>
        answer(res, 502, { error: `chat-local token ${user} failed: ${(error.stderr || error.message).trim()}` }),
    );
  };
}

/** The repository root: chat-local and its default state dir are found from there. */
export function devSession(root: string): Plugin {
  return {
    name: "chat-dev-session",
    configureServer(server) {
      server.middlewares.use(middleware(root));
    },
    configurePreviewServer(server) {
      server.middlewares.use(middleware(root));
    },
  };
}
