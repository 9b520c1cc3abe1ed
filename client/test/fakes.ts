// Test doubles: a WebSocket the test drives by hand, and a fetch that answers
// from a route table and records every request.
import type { ServerEvent } from "../src/types.js";

export class FakeWebSocket {
  static instances: FakeWebSocket[] = [];
  static reset(): void {
    FakeWebSocket.instances = [];
  }
  static get last(): FakeWebSocket {
    return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  }

  readyState = 0;
  sent: Record<string, unknown>[] = [];
  closedWith: number | undefined;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeWebSocket.instances.push(this);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(JSON.parse(data));
  }
  close(code?: number): void {
    this.closedWith = code ?? 1005;
    this.readyState = 3;
  }

  // --- driven by the test
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  /** A refused handshake, as the `ws` package reports it. */
  refuse(status: number): void {
    this.readyState = 3;
    this.onerror?.({ message: `Unexpected server response: ${status}` });
    this.onclose?.({ code: 1006 });
  }
  /** A handshake that failed before any answer, as the `ws` package reports it (e.g. `connect ECONNREFUSED 10.0.0.1:401`). */
  unreachable(message: string): void {
    this.readyState = 3;
    this.onerror?.({ message });
    this.onclose?.({ code: 1006 });
  }
  /** A refused handshake as a browser reports it: no status. */
  fail(): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code: 1006 });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code });
  }
  push(event: ServerEvent | Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(event) });
  }
  frames(action: string): Record<string, unknown>[] {
    return this.sent.filter((f) => f.action === action);
  }
}

export interface Call {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body: unknown;
}
type Handler = (call: Call) => { status?: number; body?: unknown } | Promise<{ status?: number; body?: unknown }>;

/** A fetch answering `METHOD /path` routes (`{id}` matches a segment); unrouted requests answer 404. */
export function fakeFetch(routes: Record<string, Handler>) {
  const calls: Call[] = [];
  const fetch = async (input: string | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const method = (init.method ?? "GET").toUpperCase();
    const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
    const call: Call = { method, url, headers, body: init.body ? JSON.parse(String(init.body)) : undefined };
    calls.push(call);
    for (const [route, handler] of Object.entries(routes)) {
      const [m, pattern] = route.split(" ");
      const re = new RegExp(`^${pattern.replace(/\{\w+\}/g, "[^/]+")}$`);
      if (m === method && re.test(url.pathname)) {
        const { status = 200, body } = await handler(call);
        return response(status, body);
      }
    }
    return response(404, { error: { code: "not_found", message: `no route for ${method} ${url.pathname}`, request_id: null } });
  };
  return { fetch: fetch as unknown as typeof globalThis.fetch, calls };
}

/** An unsigned JWT-shaped token for user `sub` (the client only reads `sub`; the server checks tokens). */
export function token(sub: string, n = 0): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "none" })}.${b64({ sub, n })}.signature${n}`;
}

export const ALICE = "00000000-0000-4000-8000-00000000a11c";
export const BOB = "00000000-0000-4000-8000-000000000b0b";
export const CONV = "c0ffee00-0000-4000-8000-000000000001";

export function message(seq: number, over: Partial<Record<string, unknown>> = {}) {
  return {
    id: `00000000-0000-4000-9000-${String(seq).padStart(12, "0")}`,
    conversation_id: CONV,
    seq,
    sender_id: BOB,
    client_msg_id: `m-${seq}`,
    kind: "text" as const,
    body: `message ${seq}`,
    attachment: null,
    reply_to_id: null,
    created_at: new Date(Date.UTC(2026, 10, 21, 7, 0, seq)).toISOString(),
    edited_at: null,
    deleted_at: null,
    ...over,
  };
}

export function created(seq: number, over: Partial<Record<string, unknown>> = {}) {
  return { type: "message.created" as const, conversation_id: CONV, seq, data: message(seq, over) };
}

/**
 * The `message.ack` answering alice's send `clientMsgId`: the message as the
 * server stored it (`over` for what the server made of the draft).
 */
export function ack(clientMsgId: string, seq: number, over: Partial<Record<string, unknown>> = {}, duplicate = false) {
  const stored = message(seq, { sender_id: ALICE, client_msg_id: clientMsgId, ...over });
  return {
    type: "message.ack" as const,
    conversation_id: stored.conversation_id,
    data: { client_msg_id: clientMsgId, id: stored.id, seq, created_at: stored.created_at, duplicate, message: stored },
  };
}

// A plain object rather than a Response: its body is read without streams, so fake timers cannot stall it.
function response(status: number, body: unknown) {
  const text = body === undefined ? "" : JSON.stringify(body);
  return { status, ok: status >= 200 && status < 300, statusText: String(status), text: async () => text };
}
