// Dev-only sign-in for the demo: the Vite dev and preview servers answer
//   GET /dev/session      {http_url, websocket_url, users}: where the stack is
//   GET /dev/token/<user> an access token for a seeded user (or a user id),
//                         minted by `chat-local token`
// This lives in the Vite config, not in the app: a production build has no
// way to mint tokens, and the demo is never part of the deployed stack.
//
// Which stack: CHAT_READY_FILE (a `chat-local up --ready-file` JSON, as the
// browser tests use) names its URLs and state dir; otherwise the dev stack of
// `make dev` at its fixed ports, or CHAT_HTTP_URL / CHAT_WS_URL.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import { promisify } from "node:util";
import type { Connect, Plugin } from "vite";

const run = promisify(execFile);

export const SEEDED_USERS = ["alice", "bob", "carol", "dave"] as const;
// A username or a user's UUID, as `chat-local token` takes them.
const USER = /^[A-Za-z0-9_-]{1,64}$/;

export interface StackInfo {
  httpUrl: string;
  websocketUrl: string;
  /** The stack's state dir, whose JWT secret signs tokens; undefined: chat-local's default (.local/). */
  stateDir?: string;
}

export function stackFromEnv(env: NodeJS.ProcessEnv = process.env): StackInfo {
  if (env.CHAT_READY_FILE) {
    const ready = JSON.parse(readFileSync(env.CHAT_READY_FILE, "utf8")) as Record<string, unknown>;
    const field = (name: string): string => {
      const value = ready[name];
      if (typeof value !== "string") throw new Error(`${env.CHAT_READY_FILE}: no ${name}`);
      return value;
    };
    return { httpUrl: field("http_url"), websocketUrl: field("websocket_url"), stateDir: field("state_dir") };
  }
  return {
    httpUrl: env.CHAT_HTTP_URL ?? "http://127.0.0.1:3000",
    websocketUrl: env.CHAT_WS_URL ?? "ws://127.0.0.1:3001/dev",
  };
}

/** The chat-local that `make` builds: CHAT_LOCAL, else the cargo target dir's debug build. */
function chatLocalBinary(root: string, env: NodeJS.ProcessEnv = process.env): string {
  if (env.CHAT_LOCAL) return env.CHAT_LOCAL;
  const target = env.CARGO_TARGET_DIR ? path.resolve(root, env.CARGO_TARGET_DIR) : path.join(root, "target");
  return path.join(target, "debug", "chat-local");
}

async function mintToken(root: string, stack: StackInfo, user: string): Promise<string> {
  const args = ["token", user, ...(stack.stateDir ? ["--state-dir", stack.stateDir] : [])];
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
    if (url.pathname === "/dev/session") {
      let stack: StackInfo;
      try {
        stack = stackFromEnv();
      } catch (error) {
        return answer(res, 500, { error: String(error) });
      }
      return answer(res, 200, { http_url: stack.httpUrl, websocket_url: stack.websocketUrl, users: SEEDED_USERS });
    }
    const token = /^\/dev\/token\/([^/]+)$/.exec(url.pathname);
    if (!token) return next();
    const user = decodeURIComponent(token[1]);
    if (!USER.test(user)) return answer(res, 400, { error: "a user is a username or a user id (letters, digits, - and _)" });
    mintToken(root, stackFromEnv(), user).then(
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
