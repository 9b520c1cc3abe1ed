import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Connection, handshakeStatus, type ConnectionOptions, type StateChange, type WakeSource } from "../src/connection.js";
import { FakeWebSocket, token } from "./fakes.js";

function setup(over: Partial<ConnectionOptions> = {}) {
  let n = 0;
  const tokenCalls: boolean[] = [];
  let wake: (r: "online" | "visible") => void = () => {};
  const wakeSource: WakeSource = { subscribe: (f) => ((wake = f), () => {}) };
  const conn = new Connection({
    wsUrl: "ws://chat.test/dev",
    getToken: ({ refresh }) => {
      tokenCalls.push(refresh);
      return token("u", n++);
    },
    WebSocket: FakeWebSocket,
    backoff: { random: () => 0.5 },
    wake: wakeSource,
    ...over,
  });
  const states: StateChange[] = [];
  conn.on("state", (s) => states.push(s));
  const errors: Error[] = [];
  conn.on("error", (e) => errors.push(e));
  return { conn, states, tokenCalls, errors, wake: (r: "online" | "visible") => wake(r) };
}

const tick = () => vi.advanceTimersByTimeAsync(0);

describe("connection state machine", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeWebSocket.reset();
  });
  afterEach(() => vi.useRealTimers());

  it("offers the token as a subprotocol next to `chat`, fetching a token at every connect", async () => {
    const { conn, tokenCalls } = setup();
    conn.connect();
    await tick();
    expect(FakeWebSocket.last.url).toBe("ws://chat.test/dev");
    expect(FakeWebSocket.last.protocols).toEqual(["chat", token("u", 0)]);
    FakeWebSocket.last.open();
    FakeWebSocket.last.drop();
    await vi.advanceTimersByTimeAsync(250);
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(FakeWebSocket.last.protocols).toEqual(["chat", token("u", 1)]);
    expect(tokenCalls).toEqual([false, false]);
  });

  it("goes idle → connecting → connected → reconnecting → connecting → connected → closed", async () => {
    const { conn, states } = setup();
    expect(conn.state).toBe("idle");
    conn.connect();
    await tick();
    FakeWebSocket.last.open();
    FakeWebSocket.last.drop(1001);
    await vi.advanceTimersByTimeAsync(250); // random 0.5 × ceiling 500
    FakeWebSocket.last.open();
    conn.close();
    expect(states.map((s) => `${s.from}→${s.to}`)).toEqual([
      "idle→connecting",
      "connecting→connected",
      "connected→reconnecting",
      "reconnecting→connecting",
      "connecting→connected",
      "connected→closed",
    ]);
    expect(states[2]).toMatchObject({ reason: "socket closed (1001)", attempt: 0, delayMs: 250 });
    expect(FakeWebSocket.last.closedWith).toBe(1000);
  });

  it("backs off exponentially while handshakes fail, and starts over after a success", async () => {
    const { conn, states } = setup();
    conn.connect();
    for (let i = 0; i < 7; i++) {
      await tick();
      FakeWebSocket.last.refuse(500);
      await vi.advanceTimersByTimeAsync(states.at(-1)!.delayMs!);
    }
    const delays = states.filter((s) => s.to === "reconnecting").map((s) => s.delayMs);
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 8000, 10000]);
    await tick();
    FakeWebSocket.last.open();
    FakeWebSocket.last.drop();
    expect(states.at(-1)).toMatchObject({ to: "reconnecting", attempt: 0, delayMs: 250 });
  });

  it("reconnects at once when the network comes back or the page becomes visible", async () => {
    const { conn, wake } = setup({ backoff: { random: () => 0.99 } });
    conn.connect();
    await tick();
    FakeWebSocket.last.open();
    FakeWebSocket.last.drop();
    await tick();
    expect(FakeWebSocket.instances).toHaveLength(1);
    wake("online");
    await tick();
    expect(FakeWebSocket.instances).toHaveLength(2);
    FakeWebSocket.last.fail();
    wake("visible");
    await tick();
    expect(FakeWebSocket.instances).toHaveLength(3);
  });

  it("pings inside the idle limit and drops a socket whose pong does not come", async () => {
    const { conn, states } = setup({ pingIntervalMs: 120_000, pongTimeoutMs: 10_000 });
    conn.connect();
    await tick();
    const ws = FakeWebSocket.last;
    ws.open();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(ws.frames("ping")).toHaveLength(1);
    ws.push({ type: "pong", data: { server_time: "2026-11-21T07:00:00Z" } });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(ws.frames("ping")).toHaveLength(2);
    expect(conn.state).toBe("connected");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(states.at(-1)).toMatchObject({ to: "reconnecting", reason: "pong timeout" });
    expect(ws.closedWith).toBe(4000);
  });

  it("checks a live socket with a ping when the page becomes visible", async () => {
    const { conn, wake } = setup();
    conn.connect();
    await tick();
    FakeWebSocket.last.open();
    wake("visible");
    expect(FakeWebSocket.last.frames("ping")).toHaveLength(1);
  });

  it("replaces the socket before the 2-hour limit, opening the new one first", async () => {
    const { conn, states } = setup({ maxConnectionAgeMs: 110 * 60_000, pingIntervalMs: 24 * 3600_000 });
    const opens: boolean[] = [];
    conn.on("open", ({ rotation }) => opens.push(rotation));
    conn.connect();
    await tick();
    const first = FakeWebSocket.last;
    first.open();
    await vi.advanceTimersByTimeAsync(110 * 60_000);
    const second = FakeWebSocket.last;
    expect(second).not.toBe(first);
    expect(first.closedWith).toBeUndefined();
    second.open();
    expect(conn.state).toBe("connected");
    expect(opens).toEqual([false, true]);
    conn.send({ action: "ping" });
    expect(second.frames("ping")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(first.closedWith).toBe(1000);
    expect(states.filter((s) => s.to !== "connected")).toHaveLength(1); // only the first connecting
  });

  it("on a 401 handshake fetches a fresh token once, then surfaces the error", async () => {
    const { conn, states, tokenCalls, errors } = setup();
    conn.connect();
    await tick();
    FakeWebSocket.last.refuse(401);
    await tick();
    expect(tokenCalls).toEqual([false, true]);
    FakeWebSocket.last.refuse(401);
    await tick();
    expect(conn.state).toBe("closed");
    expect(states.at(-1)?.error?.code).toBe("unauthorized");
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(["unauthorized"]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it("a fresh token that works clears the refusal", async () => {
    const { conn } = setup();
    conn.connect();
    await tick();
    FakeWebSocket.last.refuse(401);
    await tick();
    FakeWebSocket.last.open();
    expect(conn.state).toBe("connected");
  });

  it("asks whether the token is refused when the socket API hides the status (browsers)", async () => {
    const asked: string[] = [];
    const { conn, tokenCalls } = setup({ isTokenRefused: async (t) => (asked.push(t), true) });
    conn.connect();
    await tick();
    FakeWebSocket.last.fail();
    await tick();
    expect(asked).toEqual([token("u", 0)]);
    expect(tokenCalls).toEqual([false, true]);
  });

  it("reads a handshake's status from the `ws` package's refusal only, not from any number in an error", async () => {
    expect(handshakeStatus("Unexpected server response: 401")).toBe(401);
    expect(handshakeStatus("Unexpected server response: 503")).toBe(503);
    expect(handshakeStatus("connect ECONNREFUSED 127.0.0.1:4010")).toBeUndefined();
    expect(handshakeStatus("getaddrinfo ENOTFOUND api-401.example.com")).toBeUndefined();
    expect(handshakeStatus("")).toBeUndefined();

    // A server down at a port that looks like a status: a network failure to retry, not a refused token.
    const { conn, states, tokenCalls } = setup();
    conn.connect();
    await tick();
    FakeWebSocket.last.unreachable("connect ECONNREFUSED 10.0.0.1:401");
    await tick();
    expect(tokenCalls).toEqual([false]);
    expect(conn.state).toBe("reconnecting");
    expect(states.at(-1)?.reason).toBe("handshake failed (1006)");
  });

  it("stops on 403 (a user without a profile) instead of retrying in a loop", async () => {
    const { conn, states } = setup();
    conn.connect();
    await tick();
    FakeWebSocket.last.refuse(403);
    await tick();
    expect(conn.state).toBe("closed");
    expect(states.at(-1)?.error?.code).toBe("forbidden");
  });

  it("abandons a handshake that hangs", async () => {
    const { conn, states } = setup({ connectTimeoutMs: 15_000 });
    conn.connect();
    await tick();
    await vi.advanceTimersByTimeAsync(15_000);
    expect(states.at(-1)).toMatchObject({ to: "reconnecting", reason: "handshake timed out" });
  });
});
