// Who the demo signs in as, and where the stack is: both from the dev server
// (dev-session.ts), which exists only in development.
import type { GetToken } from "@chat/client";

export interface DevSession {
  http_url: string;
  websocket_url: string;
  users: string[];
}

async function json<T>(url: string): Promise<T> {
  const res = await fetch(url, { cache: "no-store" });
  const body = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `${url}: HTTP ${res.status}`);
  return body;
}

export function loadDevSession(): Promise<DevSession> {
  return json<DevSession>("/dev/session").catch((error: Error) => {
    throw new Error(`The demo signs in through its dev server (npm run dev or preview in demo/): ${error.message}`);
  });
}

/** Seconds since the epoch at which a JWT expires, read without checking it (the API checks it). */
function expiresAt(token: string): number {
  try {
    const payload = token.split(".")[1];
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: number };
    return claims.exp ?? 0;
  } catch {
    return 0;
  }
}

/**
 * What a Supabase session gives an app: the current token, refreshed when
 * refused or about to expire. The client calls it at every connect and REST call.
 */
export function tokenSource(user: string): GetToken {
  let current: Promise<string> | null = null;
  const mint = () => json<{ token: string }>(`/dev/token/${encodeURIComponent(user)}`).then((b) => b.token);
  return async ({ refresh }) => {
    if (current) {
      const token = await current.catch(() => "");
      if (!refresh && token && expiresAt(token) - Date.now() / 1000 > 60) return token;
    }
    current = mint();
    return current;
  };
}


const KEY = "chat-demo-user";
/** Per tab: two tabs can be two users. */
export const signedInUser = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (user: string) => sessionStorage.setItem(KEY, user),
  clear: () => sessionStorage.removeItem(KEY),
};
