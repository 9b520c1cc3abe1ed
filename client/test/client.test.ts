import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ChatClient } from "../src/client.js";
import { ChatSendError } from "../src/outbox.js";
import { ChatApiError, createRestClient } from "../src/rest.js";
import type { ServerEvent } from "../src/types.js";
import { ALICE, BOB, CONV, FakeWebSocket, ack, created, fakeFetch, message, token } from "./fakes.js";

/** A conversation the fake server does not list. */
const OTHER = "c0ffee00-0000-4000-8000-000000000002";

const CAROL = "00000000-0000-4000-8000-0000000ca201";
const profile = (id: string, username: string, display_name: string) => ({ id, username, display_name, avatar_url: null });
const carolJoined = {
  type: "member.joined" as const,
  conversation_id: CONV,
  seq: 2,
  data: { user_id: CAROL, role: "member" as const, joined_at: "2026-11-21T07:05:00Z", added_by: ALICE, profile: profile(CAROL, "carol", "Carol") },
};

/** A server holding a group of alice (the client, its owner) and bob, who have both read seq 1 of 1; nothing listed. */
function groupServer() {
  const participant = (id: string, username: string, role: "owner" | "member") => ({
    user_id: id,
    role,
    joined_at: "2026-11-21T07:00:00Z",
    last_read_seq: 1,
    last_delivered_seq: 1,
    profile: profile(id, username, username.toUpperCase()),
  });
  const group = {
    id: CONV,
    kind: "group",
    name: "Trip",
    context_type: null,
    context_id: null,
    created_by: ALICE,
    created_at: "2026-11-21T07:00:00Z",
    last_seq: 1,
    participants: [participant(ALICE, "alice", "owner"), participant(BOB, "bob", "member")],
  };
  const me = { role: "owner", joined_at: "2026-11-21T07:00:00Z", archived: false, muted: false, last_read_seq: 1, unread_count: 0 };
  return fakeFetch({
    "GET /v1/conversations": () => ({ body: { conversations: [], next_cursor: null } }),
    "GET /v1/unread": () => ({ body: { total: 0, conversations: [] } }),
    "GET /v1/presence": () => ({ body: { presence: [] } }),
    "GET /v1/conversations/{id}": () => ({ body: { conversation: group, me } }),
    "GET /v1/conversations/{id}/messages": () => ({ body: { messages: [], has_more: false } }),
  });
}

/** A server holding one direct conversation between alice (the client) and bob (or a room of theirs). */
function server(kind: "direct" | "room" = "direct") {
  const history: ServerEvent[] = [created(1)];
  const lastSeq = () => history.length;
  const summary = () => ({
    id: CONV,
    kind,
    name: kind === "room" ? "Lobby" : null,
    context_type: null,
    context_id: null,
    created_at: "2026-11-21T07:00:00Z",
    last_seq: lastSeq(),
    last_activity_at: "2026-11-21T07:00:00Z",
    member_count: 2,
    other_user_id: BOB,
    counterpart: { id: BOB, username: "bob", display_name: "Bob", avatar_url: null },
    last_message: null,
    unread_count: 0,
    last_read_seq: 0,
    archived: false,
    muted: false,
    role: "owner",
  });
  const { fetch, calls } = fakeFetch({
    "GET /v1/conversations": () => ({ body: { conversations: [summary()], next_cursor: null } }),
    "GET /v1/unread": () => ({ body: { total: 0, conversations: [] } }),
    "GET /v1/presence": () => ({ body: { presence: [] } }),
    "GET /v1/conversations/{id}/events": (call) => {
      const after = Number(call.url.searchParams.get("after_seq"));
      const limit = 2; // small pages: replays must follow has_more
      const events = history.slice(after, after + limit).map((e) => ({ ...e, actor_id: BOB, created_at: "2026-11-21T07:00:00Z" }));
      return { body: { events, has_more: after + limit < history.length, last_seq: lastSeq() } };
    },
  });
  /** Stores a message by bob (as another connection would); returns its event. */
  const write = () => {
    const e = created(history.length + 1);
    history.push(e);
    return e;
  };
  return { fetch, calls, history, write };
}

function client(fetch: typeof globalThis.fetch, over: Record<string, unknown> = {}) {
  let ids = 0;
  const chat = new ChatClient({
    httpUrl: "http://api.test",
    wsUrl: "ws://ws.test/dev",
    getToken: () => token(ALICE),
    WebSocket: FakeWebSocket,
    fetch,
    wake: null,
    backoff: { random: () => 0 },
    newClientMsgId: () => `c-${++ids}`,
    ...over,
  });
  const seqs: number[] = [];
  chat.on("event", (e) => {
    if ("seq" in e && typeof e.seq === "number") seqs.push(e.seq);
  });
  chat.on("error", () => {});
  return { chat, seqs };
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await vi.advanceTimersByTimeAsync(0);
};

describe("chat client", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeWebSocket.reset();
  });
  afterEach(() => vi.useRealTimers());

  it("replays a gap from REST before releasing newer pushes: each event once, in order", async () => {
    const srv = server();
    const { chat, seqs } = client(srv.fetch);
    chat.connect();
    await flush();
    FakeWebSocket.last.open();
    await flush(); // the list says last_seq 1
    const e2 = srv.write();
    srv.write(); // 3: its push is lost
    srv.write(); // 4: also lost
    const e5 = srv.write();
    FakeWebSocket.last.push(e5);
    FakeWebSocket.last.push(e2);
    FakeWebSocket.last.push(e2);
    await flush();
    expect(seqs).toEqual([2]);
    await vi.advanceTimersByTimeAsync(1500);
    await flush();
    expect(seqs).toEqual([2, 3, 4, 5]);
    FakeWebSocket.last.push(e5);
    await flush();
    expect(seqs).toEqual([2, 3, 4, 5]);
    const replays = srv.calls.filter((c) => c.url.pathname.endsWith("/events")).map((c) => c.url.searchParams.get("after_seq"));
    expect(replays).toEqual(["2", "4"]);
    expect(chat.getConversationList()[0]).toMatchObject({ title: "Bob", last_seq: 5, unread_count: 4 });
  });

  it("after a reconnect, catches up on what was missed before newer pushes", async () => {
    const srv = server();
    const { chat, seqs } = client(srv.fetch);
    chat.connect();
    await flush();
    FakeWebSocket.last.open();
    await flush();
    FakeWebSocket.last.drop();
    srv.write();
    srv.write();
    const e4 = srv.write();
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    // The new socket delivers seq 4 before the catch-up has run.
    FakeWebSocket.last.open();
    FakeWebSocket.last.push(e4);
    await flush();
    expect(seqs).toEqual([2, 3, 4]);
  });

  it("a push lost in a quiet conversation arrives at the next periodic check", async () => {
    const srv = server();
    const { chat, seqs } = client(srv.fetch, { resyncIntervalMs: 300_000 });
    chat.connect();
    await flush();
    FakeWebSocket.last.open();
    await flush();
    srv.write();
    await vi.advanceTimersByTimeAsync(299_000);
    expect(seqs).toEqual([]);
    await vi.advanceTimersByTimeAsync(1_000);
    await flush();
    expect(seqs).toEqual([2]);
  });

  it("shows a sent message as pending, resends it after a reconnect with the same client_msg_id, and settles it on the ack", async () => {
    const srv = server();
    const { chat, seqs } = client(srv.fetch);
    chat.connect();
    await flush();
    FakeWebSocket.last.open();
    await flush();
    const first = chat.send(CONV, "hello");
    const second = chat.send(CONV, "again");
    expect(chat.getConversationView(CONV).messages.map((m) => [m.body, m.status])).toEqual([
      ["hello", "pending"],
      ["again", "pending"],
    ]);
    // One frame in flight per conversation: two could be stored in either order.
    expect(FakeWebSocket.last.frames("sendMessage")).toEqual([
      { action: "sendMessage", conversation_id: CONV, client_msg_id: "c-1", body: "hello" },
    ]);
    FakeWebSocket.last.drop(); // no ack: the server may or may not have stored it
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1"]);
    // It had been stored: the ack says so.
    ws.push(ack("c-1", 2, { body: "hello" }, true));
    await expect(first).resolves.toMatchObject({ id: message(2).id, seq: 2, body: "hello", sender_id: ALICE });
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1", "c-2"]);
    ws.push(ack("c-2", 3, { body: "again" }));
    await expect(second).resolves.toMatchObject({ seq: 3, body: "again" });
    await flush();
    expect(seqs).toEqual([2, 3]);
    expect(chat.getConversationView(CONV).messages.map((m) => [m.seq, m.body, m.status])).toEqual([
      [2, "hello", "sent"],
      [3, "again", "sent"],
    ]);
  });

  it("resends an unanswered frame after the ack timeout, with the same id", async () => {
    const srv = server();
    const { chat } = client(srv.fetch, { ackTimeoutMs: 10_000 });
    chat.connect();
    await flush();
    FakeWebSocket.last.open();
    await flush();
    void chat.send(CONV, "hello");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(FakeWebSocket.last.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1", "c-1"]);
  });

  it("a refused message turns failed, the next one goes, and retry sends the same id", async () => {
    const srv = server();
    const { chat } = client(srv.fetch);
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    const tooLong = chat.send(CONV, "x".repeat(5001));
    const ok = chat.send(CONV, "fine");
    ws.push({
      type: "error",
      data: { code: "message_too_long", message: "`body` may hold at most 5000 characters", status: 413, action: "sendMessage", request_id: "r", client_msg_id: "c-1" },
    });
    await expect(tooLong).rejects.toBeInstanceOf(ChatSendError);
    await expect(tooLong).rejects.toMatchObject({ code: "message_too_long", clientMsgId: "c-1" });
    expect(chat.getConversationView(CONV).messages.map((m) => m.status)).toEqual(["failed", "pending"]);
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1", "c-2"]);
    ws.push(ack("c-2", 2, { body: "fine" }));
    await ok;
    void chat.retry(CONV, "c-1").catch(() => {});
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1", "c-2", "c-1"]);
  });

  it("a server error on a send is retried, not failed", async () => {
    const srv = server();
    const { chat } = client(srv.fetch);
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    void chat.send(CONV, "hello");
    ws.push({ type: "error", data: { code: "service_unavailable", message: "try again", status: 503, action: "sendMessage", request_id: null, client_msg_id: "c-1" } });
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1", "c-1"]);
    expect(chat.getConversationView(CONV).messages.map((m) => m.status)).toEqual(["pending"]);
  });

  it("pipelines sends to different conversations; an error refusing the second fails that one only", async () => {
    const srv = server();
    const { chat } = client(srv.fetch);
    const errors: unknown[] = [];
    chat.on("error", (e) => errors.push(e));
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    const first = chat.send(CONV, "to bob");
    const second = chat.send(OTHER, "to a conversation I left");
    const third = chat.send(CONV, "after the first");
    // Both conversations' first message at once; the third waits for its conversation's first.
    expect(ws.frames("sendMessage").map((f) => [f.conversation_id, f.client_msg_id])).toEqual([
      [CONV, "c-1"],
      [OTHER, "c-2"],
    ]);
    ws.push({
      type: "error",
      data: { code: "not_a_participant", message: "You are not a participant of this conversation.", status: 403, action: "sendMessage", request_id: "r", client_msg_id: "c-2" },
    });
    await expect(second).rejects.toMatchObject({ code: "not_a_participant", clientMsgId: "c-2" });
    expect(chat.getConversationView(OTHER).messages.map((m) => m.status)).toEqual(["failed"]);
    expect(chat.getConversationView(CONV).messages.map((m) => [m.body, m.status])).toEqual([
      ["to bob", "pending"],
      ["after the first", "pending"],
    ]);
    expect(errors).toEqual([]); // the refusal settled its message; it is not an app-level error
    ws.push(ack("c-1", 2, { body: "to bob" }));
    await expect(first).resolves.toMatchObject({ seq: 2, body: "to bob" });
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1", "c-2", "c-3"]);
    ws.push(ack("c-3", 3, { body: "after the first" }));
    await expect(third).resolves.toMatchObject({ seq: 3 });
  });

  it("a rate-limited send waits retry_after_ms, holding its conversation, then goes again with the same id", async () => {
    const srv = server();
    const { chat } = client(srv.fetch);
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    void chat.send(CONV, "one");
    void chat.send(CONV, "two");
    ws.push({
      type: "error",
      data: { code: "rate_limited", message: "slow down", status: 429, action: "sendMessage", request_id: "r", client_msg_id: "c-1", retry_after_ms: 3000 },
    });
    await vi.advanceTimersByTimeAsync(2999);
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1", "c-1"]);
    expect(chat.getConversationView(CONV).messages.map((m) => m.status)).toEqual(["pending", "pending"]);
  });

  it("a rate-limited send keeps waiting out retry_after_ms across a reconnect and a planned socket swap", async () => {
    const srv = server();
    const { chat } = client(srv.fetch);
    chat.connect();
    await flush();
    const first = FakeWebSocket.last;
    first.open();
    await flush();
    void chat.send(CONV, "one");
    first.push({
      type: "error",
      data: { code: "rate_limited", message: "slow down", status: 429, action: "sendMessage", request_id: "r", client_msg_id: "c-1", retry_after_ms: 30_000 },
    });
    // The socket drops and a new one opens (the outbox pauses and resumes)...
    first.drop();
    await vi.advanceTimersByTimeAsync(1);
    await flush();
    const second = FakeWebSocket.last;
    second.open();
    await flush();
    expect(second.frames("sendMessage")).toEqual([]);
    // ...and the app swaps it for one with a refreshed token.
    await vi.advanceTimersByTimeAsync(10_000);
    chat.reconnect();
    await flush();
    const third = FakeWebSocket.last;
    expect(third).not.toBe(second);
    third.open();
    await flush();
    expect(third.frames("sendMessage")).toEqual([]);
    const sent = () => FakeWebSocket.instances.flatMap((ws) => ws.frames("sendMessage")).length;
    await vi.advanceTimersByTimeAsync(30_000 - 10_000 - 1 - 1 - 20);
    expect(sent()).toBe(1);
    await vi.advanceTimersByTimeAsync(30);
    expect(third.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1"]);
    expect(sent()).toBe(2);
  });

  it("API Gateway's generic crash frame (no type) resends the unacknowledged sends with the same ids and fails none", async () => {
    const srv = server();
    const { chat } = client(srv.fetch, { ackTimeoutMs: 60_000 });
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    const first = chat.send(CONV, "one");
    const second = chat.send(CONV, "two");
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1"]);
    // The function died: stored or not, the frame does not say.
    ws.push({ message: "Internal server error", connectionId: "conn-1", requestId: "req-1" });
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1", "c-1"]);
    expect(chat.getConversationView(CONV).messages.map((m) => m.status)).toEqual(["pending", "pending"]);
    // It had been stored: the retry is acked as a duplicate, the next one goes, nothing failed.
    ws.push(ack("c-1", 2, { body: "one" }, true));
    await expect(first).resolves.toMatchObject({ client_msg_id: "c-1", seq: 2 });
    expect(ws.frames("sendMessage").map((f) => f.client_msg_id)).toEqual(["c-1", "c-1", "c-2"]);
    // A crash frame after everything out was acked changes nothing.
    ws.push(ack("c-2", 3, { body: "two" }));
    await second;
    ws.push({ message: "Internal server error", connectionId: "conn-1", requestId: "req-2" });
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.frames("sendMessage")).toHaveLength(3);
    expect(chat.getConversationView(CONV).messages.map((m) => [m.seq, m.status])).toEqual([[2, "sent"], [3, "sent"]]);
  });

  it("a re-delivered message.created (a repeated send) for a seq already applied is dropped", async () => {
    const srv = server();
    const { chat, seqs } = client(srv.fetch);
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    const e = srv.write();
    ws.push(e);
    await flush();
    // bob retried (his function died after the commit): the same event again.
    ws.push(e);
    await flush();
    expect(seqs).toEqual([e.seq]);
    expect(chat.getConversationView(CONV).messages.map((m) => m.seq)).toEqual([e.seq]);
  });

  it("shows the sender's message as the ack says it was stored, not as drafted", async () => {
    const srv = server();
    const { chat, seqs } = client(srv.fetch);
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    const url = "https://cdn.example.com/u/a11c/balcony.jpg";
    const sending = chat.send(CONV, { kind: "image", body: "   ", attachment: { url, name: " balcony.jpg ", mime_type: "image/JPEG", size_bytes: 482113 } });
    expect(chat.getConversationView(CONV).messages.at(-1)).toMatchObject({ status: "pending", body: "   " });
    // What the server made of it: the caption blank → none, the name trimmed, the type lower-cased.
    const stored = ack("c-1", 2, { kind: "image", body: null, attachment: { url, name: "balcony.jpg", mime_type: "image/jpeg", size_bytes: 482113 } });
    ws.push(stored);
    await expect(sending).resolves.toEqual(stored.data.message);
    await flush();
    expect(seqs).toEqual([2]);
    const { messages } = chat.getConversationView(CONV);
    expect(messages).toEqual([{ ...stored.data.message, status: "sent", receipt: "sent" }]);
    expect(chat.getConversationList()[0].last_message).toEqual(stored.data.message);
  });

  it("emits one change per event, however many parts of the state it moves", async () => {
    const { fetch } = groupServer();
    const { chat } = client(fetch);
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    await chat.open(CONV);
    await flush();
    let changes = 0;
    chat.subscribe(() => changes++);
    /** The changes `what` emits at once (after whatever earlier work was still running settled). */
    const countChanges = async (what: () => unknown) => {
      await flush();
      changes = 0;
      void what();
      return changes;
    };
    // A join: the profile cached, the participant added.
    expect(await countChanges(() => ws.push(carolJoined))).toBe(1);
    expect(chat.getConversationView(CONV).conversation?.participants.map((p) => p.user_id)).toContain(CAROL);
    // An own read: the settings and the receipt.
    expect(await countChanges(() => chat.markRead(CONV))).toBe(1);
    expect(ws.frames("markRead")).toHaveLength(1);
    expect(await countChanges(() => ws.push({ type: "read", conversation_id: CONV, data: { user_id: ALICE, last_read_seq: 2, read_at: "2026-11-21T07:06:00Z" } }))).toBe(1);
    // An ack: the outbox settled and the message stored, in the same render.
    void chat.send(CONV, "hi");
    let shown: unknown[] = [];
    chat.subscribe(() => (shown = chat.getConversationView(CONV).messages.map((m) => [m.body, m.status])));
    expect(await countChanges(() => ws.push(ack("c-1", 3, { body: "hi" })))).toBe(1);
    expect(shown).toEqual([["hi", "sent"]]);
  });

  it("member.joined puts the newcomer, named by the event's profile, in the participants without reloading", async () => {
    const { fetch, calls } = groupServer();
    const { chat, seqs } = client(fetch);
    chat.connect();
    await flush();
    FakeWebSocket.last.open();
    await flush();
    await chat.open(CONV);
    FakeWebSocket.last.push(carolJoined);
    await flush();
    expect(seqs).toEqual([2]);
    const participants = chat.getConversationView(CONV).conversation?.participants ?? [];
    expect(participants.map((p) => [p.profile.username, p.role, p.last_read_seq])).toEqual([
      ["alice", "owner", 1],
      ["bob", "member", 1],
      ["carol", "member", 0],
    ]);
    expect(chat.displayName(CAROL)).toBe("Carol");
    const asked = calls.map((c) => c.url.pathname);
    expect(asked.filter((p) => p === `/v1/conversations/${CONV}`)).toHaveLength(1);
    expect(asked.filter((p) => p === "/v1/users")).toEqual([]);
  });

  it("marks read: the unread count drops at once and one markRead frame goes out", async () => {
    const srv = server();
    const { chat } = client(srv.fetch);
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    ws.push(srv.write());
    await flush();
    expect(chat.getUnreadTotal()).toBe(1);
    await chat.markRead(CONV);
    expect(chat.getUnreadTotal()).toBe(0);
    expect(ws.frames("markRead")).toEqual([{ action: "markRead", conversation_id: CONV }]);
    await chat.markRead(CONV);
    expect(ws.frames("markRead")).toHaveLength(1);
  });

  it("shows bob typing until the event's expiry, and clears it when his message arrives", async () => {
    const srv = server();
    const { chat } = client(srv.fetch);
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    ws.push({ type: "typing", conversation_id: CONV, data: { user_id: BOB, is_typing: true, expires_at: new Date(Date.now() + 6000).toISOString() } });
    expect(chat.getConversationView(CONV).typingUserIds).toEqual([BOB]);
    ws.push(srv.write());
    expect(chat.getConversationView(CONV).typingUserIds).toEqual([]);
  });
});

describe("REST calls", () => {
  it("take the token from getToken at every call, and on a 401 fetch a fresh one once", async () => {
    const tokens: boolean[] = [];
    let refusals = 1;
    const { fetch, calls } = fakeFetch({
      "GET /v1/me": () =>
        refusals-- > 0
          ? { status: 401, body: { error: { code: "token_expired", message: "the access token has expired", request_id: "r1" } } }
          : { body: { user: { id: ALICE } } },
      "GET /v1/health": () => ({ body: { status: "ok" } }),
    });
    const rest = createRestClient({ httpUrl: "http://api.test/", getToken: ({ refresh }) => (tokens.push(refresh), refresh ? "fresh" : "stale"), fetch });
    await expect(rest.getMe()).resolves.toEqual({ user: { id: ALICE } });
    expect(calls.map((c) => c.headers.authorization)).toEqual(["Bearer stale", "Bearer fresh"]);
    refusals = 2;
    const error = await rest.getMe().catch((e) => e);
    expect(error).toBeInstanceOf(ChatApiError);
    expect(error).toMatchObject({ status: 401, code: "token_expired", requestId: "r1", operation: "getMe" });
    expect(tokens).toEqual([false, true, false, true]);
    await rest.getHealth();
    expect(calls.at(-1)!.headers.authorization).toBeUndefined();
  });

  it("fill path, query (arrays comma-separated) and body as the document says", async () => {
    const { fetch, calls } = fakeFetch({
      "GET /v1/presence": () => ({ body: { presence: [] } }),
      "POST /v1/conversations/{id}/messages": () => ({ status: 201, body: { message: message(2), duplicate: false } }),
    });
    const rest = createRestClient({ httpUrl: "http://api.test", getToken: () => "t", fetch });
    await rest.getPresence({ query: { user_ids: [ALICE, BOB] } });
    expect(calls[0].url.search).toBe(`?user_ids=${encodeURIComponent(`${ALICE},${BOB}`)}`);
    await rest.sendMessage({ path: { id: CONV }, header: { "Idempotency-Key": "k-1" }, body: { body: "hi" } });
    expect(calls[1]).toMatchObject({ method: "POST", body: { body: "hi" } });
    expect(calls[1].url.pathname).toBe(`/v1/conversations/${CONV}/messages`);
    expect(calls[1].headers["idempotency-key"]).toBe("k-1");
  });

  it("turn API Gateway's own answers and network failures into ChatApiError", async () => {
    const rest = createRestClient({
      httpUrl: "http://api.test",
      getToken: () => "t",
      fetch: (async () => ({ status: 429, ok: false, statusText: "", text: async () => '{"message":"Too Many Requests"}' })) as never,
    });
    await expect(rest.getMe()).rejects.toMatchObject({ status: 429, code: "http_error", retryable: true });
    const down = createRestClient({ httpUrl: "http://api.test", getToken: () => "t", fetch: (async () => { throw new TypeError("fetch failed"); }) as never });
    await expect(down.getMe()).rejects.toMatchObject({ status: 0, code: "network_error" });
  });
});

describe("history", () => {
  it("opens a conversation with its newest page and loads older pages until there are none", async () => {
    const all = Array.from({ length: 5 }, (_, i) => message(i + 1));
    const { fetch, calls } = fakeFetch({
      "GET /v1/conversations/{id}": () => ({
        body: {
          conversation: { id: CONV, kind: "direct", name: null, context_type: null, context_id: null, created_by: ALICE, created_at: "2026-11-21T07:00:00Z", last_seq: 5, participants: [] },
          me: { role: "owner", joined_at: "2026-11-21T07:00:00Z", archived: false, muted: false, last_read_seq: 0, unread_count: 5 },
        },
      }),
      "GET /v1/conversations/{id}/messages": (call) => {
        const before = Number(call.url.searchParams.get("before_seq") ?? 6);
        const limit = Number(call.url.searchParams.get("limit"));
        const older = all.filter((m) => m.seq < before);
        const page = older.slice(-limit);
        return { body: { messages: page, has_more: older.length > page.length } };
      },
    });
    const { chat } = client(fetch, { pageSize: 2 });
    await chat.open(CONV);
    expect(chat.getConversationView(CONV)).toMatchObject({ hasOlder: true, loading: false });
    expect(chat.getConversationView(CONV).messages.map((m) => m.seq)).toEqual([4, 5]);
    await chat.loadOlder(CONV);
    await chat.loadOlder(CONV);
    expect(chat.getConversationView(CONV).messages.map((m) => m.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(chat.getConversationView(CONV).hasOlder).toBe(false);
    await chat.loadOlder(CONV);
    const pages = calls.filter((c) => c.url.pathname.endsWith("/messages")).map((c) => c.url.searchParams.get("before_seq"));
    expect(pages).toEqual([null, "4", "2"]);
  });
});

describe("delivery receipts", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeWebSocket.reset();
  });
  afterEach(() => vi.useRealTimers());

  /** A connected client of `srv`, its list loaded. */
  async function connected(srv: ReturnType<typeof server>, over: Record<string, unknown> = {}) {
    const { chat } = client(srv.fetch, over);
    chat.connect();
    await flush();
    FakeWebSocket.last.open();
    await flush();
    return chat;
  }

  it("reports what reaches the device once per conversation per window, with the highest seq", async () => {
    const srv = server();
    const chat = await connected(srv);
    const ws = FakeWebSocket.last;
    ws.push(srv.write());
    ws.push(srv.write());
    await flush();
    await vi.advanceTimersByTimeAsync(499);
    expect(ws.frames("markDelivered")).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(ws.frames("markDelivered")).toEqual([{ action: "markDelivered", conversation_id: CONV, seq: 3 }]);

    // The user's own message is not reported; bob's next one is.
    ws.push(created(4, { sender_id: ALICE }));
    await flush();
    await vi.advanceTimersByTimeAsync(1000);
    expect(ws.frames("markDelivered")).toHaveLength(1);
    srv.history.push(created(4, { sender_id: ALICE }));
    ws.push(srv.write());
    await flush();
    await vi.advanceTimersByTimeAsync(500);
    expect(ws.frames("markDelivered").map((f) => f.seq)).toEqual([3, 5]);

    // Another device of the user's reported further: nothing to add.
    ws.push({ type: "delivered", conversation_id: CONV, data: { user_id: ALICE, last_delivered_seq: 7, delivered_at: "2026-11-21T07:01:00Z" } });
    ws.push(srv.write());
    await flush();
    await vi.advanceTimersByTimeAsync(500);
    expect(ws.frames("markDelivered").map((f) => f.seq)).toEqual([3, 5]);

    // Read before the window ends: reading counts as delivered, no report.
    ws.push(srv.write()); // 7
    ws.push(srv.write()); // 8
    await flush();
    await chat.markRead(CONV);
    await vi.advanceTimersByTimeAsync(500);
    expect(ws.frames("markDelivered").map((f) => f.seq)).toEqual([3, 5]);
    expect(ws.frames("markRead")).toHaveLength(1);

    // markDelivered goes at once.
    srv.write(); // 9, reached the device some other way
    chat.markDelivered(CONV, 9);
    chat.markDelivered(CONV, 8);
    expect(ws.frames("markDelivered").map((f) => f.seq)).toEqual([3, 5, 9]);
  });

  it("reports messages replayed after a reconnect on the new socket, and waits for a socket that is not open", async () => {
    const srv = server();
    await connected(srv);
    const first = FakeWebSocket.last;
    first.push(srv.write()); // 2
    await flush();
    first.drop();
    srv.write(); // 3
    srv.write(); // 4
    await vi.advanceTimersByTimeAsync(500); // the window ends while no socket is open
    expect(first.frames("markDelivered")).toEqual([]);
    await flush();
    const second = FakeWebSocket.last;
    expect(second).not.toBe(first);
    second.open();
    await flush();
    await vi.advanceTimersByTimeAsync(500);
    expect(second.frames("markDelivered")).toEqual([{ action: "markDelivered", conversation_id: CONV, seq: 4 }]);
  });

  it("reports nothing in a room, nor when told not to", async () => {
    const room = server("room");
    await connected(room);
    FakeWebSocket.last.push(room.write());
    await flush();
    await vi.advanceTimersByTimeAsync(1000);
    expect(FakeWebSocket.last.frames("markDelivered")).toEqual([]);

    const direct = server();
    await connected(direct, { deliveryReportMs: null });
    FakeWebSocket.last.push(direct.write());
    await flush();
    await vi.advanceTimersByTimeAsync(1000);
    expect(FakeWebSocket.last.frames("markDelivered")).toEqual([]);
  });

  it("shows the user's messages sent, delivered and read by the other members who were there when they were sent", async () => {
    const { fetch } = groupServer();
    const { chat } = client(fetch);
    const events: string[] = [];
    chat.on("event", (e) => events.push(e.type));
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    await chat.open(CONV);
    ws.push(carolJoined); // seq 2, at 07:05
    await flush();
    const receipt = () => chat.getConversationView(CONV).messages.map((m) => [m.seq, m.receipt]);
    const receipts = (user: string, delivered: number, read?: number) => {
      ws.push({ type: "delivered", conversation_id: CONV, data: { user_id: user, last_delivered_seq: delivered, delivered_at: "2026-11-21T07:07:00Z" } });
      if (read !== undefined) ws.push({ type: "read", conversation_id: CONV, data: { user_id: user, last_read_seq: read, read_at: "2026-11-21T07:07:00Z" } });
    };

    // Sent at 07:06, after carol joined: bob and carol both count.
    void chat.send(CONV, "hi both");
    ws.push(ack("c-1", 3, { body: "hi both", created_at: "2026-11-21T07:06:00Z" }));
    await flush();
    expect(receipt()).toEqual([[3, "sent"]]);
    receipts(BOB, 3);
    await flush();
    expect(receipt()).toEqual([[3, "sent"]]);
    receipts(CAROL, 3);
    await flush();
    expect(receipt()).toEqual([[3, "delivered"]]);
    receipts(BOB, 3, 3);
    await flush();
    expect(receipt()).toEqual([[3, "delivered"]]);
    ws.push({ type: "read", conversation_id: CONV, data: { user_id: CAROL, last_read_seq: 3, read_at: "2026-11-21T07:08:00Z" } });
    await flush();
    expect(receipt()).toEqual([[3, "read"]]);
    const carol = chat.getConversationView(CONV).conversation?.participants.find((p) => p.user_id === CAROL);
    expect([carol?.last_read_seq, carol?.last_delivered_seq]).toEqual([3, 3]);

    // A receipt never goes back, and a read raises the delivered one with it.
    receipts(BOB, 1);
    ws.push(created(4, { body: "from bob", created_at: "2026-11-21T07:09:00Z" }));
    void chat.send(CONV, "later");
    ws.push(ack("c-2", 5, { body: "later", created_at: "2026-11-21T07:10:00Z" }));
    await flush();
    ws.push({ type: "read", conversation_id: CONV, data: { user_id: BOB, last_read_seq: 5, read_at: "2026-11-21T07:11:00Z" } });
    await flush();
    const bob = chat.getConversationView(CONV).conversation?.participants.find((p) => p.user_id === BOB);
    expect([bob?.last_read_seq, bob?.last_delivered_seq]).toEqual([5, 5]);
    expect(receipt()).toEqual([
      [3, "read"],
      [4, undefined], // bob's: receipts are for the user's own messages
      [5, "sent"],
    ]);
    expect(events.filter((t) => t === "delivered")).toHaveLength(4);
  });

  it("a message stays sent where no other member's receipt can be seen (a room, a block)", async () => {
    const hidden = (id: string, username: string) => ({
      user_id: id,
      role: "member",
      joined_at: "2026-11-21T07:00:00Z",
      last_read_seq: null,
      last_delivered_seq: null,
      profile: profile(id, username, username),
    });
    const { fetch } = fakeFetch({
      "GET /v1/conversations": () => ({ body: { conversations: [], next_cursor: null } }),
      "GET /v1/unread": () => ({ body: { total: 0, conversations: [] } }),
      "GET /v1/presence": () => ({ body: { presence: [] } }),
      "GET /v1/conversations/{id}": () => ({
        body: {
          conversation: {
            id: CONV, kind: "group", name: "Trip", context_type: null, context_id: null, created_by: ALICE,
            created_at: "2026-11-21T07:00:00Z", last_seq: 1,
            participants: [{ ...hidden(ALICE, "alice"), last_read_seq: 1, last_delivered_seq: 1 }, hidden(BOB, "bob")],
          },
          me: { role: "member", joined_at: "2026-11-21T07:00:00Z", archived: false, muted: false, last_read_seq: 1, unread_count: 0 },
        },
      }),
      "GET /v1/conversations/{id}/messages": () => ({ body: { messages: [], has_more: false } }),
    });
    const { chat } = client(fetch);
    chat.connect();
    await flush();
    const ws = FakeWebSocket.last;
    ws.open();
    await flush();
    await chat.open(CONV);
    void chat.send(CONV, "anyone?");
    ws.push(ack("c-1", 2, { body: "anyone?" }));
    ws.push({ type: "read", conversation_id: CONV, data: { user_id: BOB, last_read_seq: 2, read_at: "2026-11-21T07:07:00Z" } });
    await flush();
    expect(chat.getConversationView(CONV).messages.map((m) => m.receipt)).toEqual(["sent"]);
  });
});
