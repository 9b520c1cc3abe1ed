// Against a real local stack (skipped without one): the client in Node.js with
// the `ws` package. Point it at a stack with CHAT_STACK_FILE (the JSON that
// `chat-local up --ready-file` writes), or with CHAT_HTTP_URL, CHAT_WS_URL,
// CHAT_TOKEN_ALICE and CHAT_TOKEN_BOB. `npm run e2e` starts an ephemeral
// stack and runs this file.
import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { ChatClient, subjectOf, type ConnectionState, type Message, type ServerEvent } from "../src/index.js";

function stack() {
  if (process.env.CHAT_STACK_FILE) {
    const s = JSON.parse(readFileSync(process.env.CHAT_STACK_FILE, "utf8"));
    return { http: s.http_url, ws: s.websocket_url, alice: s.users.alice.token, bob: s.users.bob.token };
  }
  const { CHAT_HTTP_URL: http, CHAT_WS_URL: ws, CHAT_TOKEN_ALICE: alice, CHAT_TOKEN_BOB: bob } = process.env;
  return http && ws && alice && bob ? { http, ws, alice, bob } : null;
}
const live = stack();

const clients: ChatClient[] = [];
function user(tokenValue: string) {
  const chat = new ChatClient({ httpUrl: live!.http, wsUrl: live!.ws, getToken: () => tokenValue, WebSocket, wake: null });
  const events: ServerEvent[] = [];
  chat.on("event", (e) => events.push(e));
  chat.on("error", () => {});
  clients.push(chat);
  return { chat, events };
}

async function until<T>(what: string, check: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const state = (chat: ChatClient, s: ConnectionState) => until(`state ${s}`, () => chat.state === s);

describe.skipIf(!live)("against the local stack", () => {
  afterAll(() => clients.forEach((c) => c.close()));

  it("alice's message reaches bob once; bob catches up on five sent while he was away, once each, in order", async () => {
    const alice = user(live!.alice);
    const bob = user(live!.bob);
    const bobId = subjectOf(live!.bob)!;
    alice.chat.connect();
    bob.chat.connect();
    await state(alice.chat, "connected");
    await state(bob.chat, "connected");
    const conversation = await alice.chat.openDirect(bobId);
    await alice.chat.open(conversation.id);
    await bob.chat.loadConversations();

    const tag = Math.random().toString(36).slice(2, 8);
    const sent = await alice.chat.send(conversation.id, `hello ${tag}`);
    expect(sent.seq).toBeGreaterThan(0);
    await until("bob gets it", () => bob.events.some((e) => e.type === "message.created" && e.data.id === sent.id));
    expect(alice.chat.getConversationView(conversation.id).messages.at(-1)).toMatchObject({ id: sent.id, status: "sent" });
    // Bob's client reports that it reached his device: alice sees it delivered.
    const receiptOf = (id: string) => alice.chat.getConversationView(conversation.id).messages.find((m) => m.id === id)?.receipt;
    await until("delivered at alice", () => receiptOf(sent.id) === "delivered");
    const listed = await until("bob's list names alice", () => bob.chat.getConversationList().find((c) => c.id === conversation.id));
    expect(listed.title).toBe("Alice");

    // Bob goes away; alice sends five; bob comes back and replays them.
    bob.chat.close();
    const five: Message[] = [];
    for (let i = 1; i <= 5; i++) five.push(await alice.chat.send(conversation.id, `${tag} #${i}`));
    bob.chat.connect();
    await state(bob.chat, "connected");
    const bodies = () =>
      bob.events.filter((e) => e.type === "message.created" && e.conversation_id === conversation.id && e.data.body?.startsWith(`${tag} #`)).map((e) => (e as { data: { body: string } }).data.body);
    await until("five replayed", () => bodies().length >= 5);
    await new Promise((r) => setTimeout(r, 500));
    expect(bodies()).toEqual([1, 2, 3, 4, 5].map((i) => `${tag} #${i}`));
    const seqs = bob.events.filter((e) => "seq" in e && e.conversation_id === conversation.id).map((e) => (e as { seq: number }).seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);

    // Unread: counted, then cleared by reading, as the server counts it.
    await until("bob's unread", () => (bob.chat.getConversationList().find((c) => c.id === conversation.id)?.unread_count ?? 0) >= 5);
    await bob.chat.markRead(conversation.id);
    await until("read receipt at alice", () =>
      alice.chat.getConversationView(conversation.id).conversation?.participants.find((p) => p.user_id === bobId)?.last_read_seq === five[4].seq,
    );
    expect(five.map((m) => receiptOf(m.id))).toEqual(["read", "read", "read", "read", "read"]);
    const unread = await bob.chat.rest.getUnreadCounts();
    expect(unread.conversations.find((c) => c.conversation_id === conversation.id)).toBeUndefined();

    // Typing shows at bob and goes away on its own.
    alice.chat.typing(conversation.id);
    const aliceId = subjectOf(live!.alice)!;
    await until("typing shown", () => bob.chat.getConversationView(conversation.id).typingUserIds.includes(aliceId));
    alice.chat.stopTyping(conversation.id);
    await until("typing gone", () => !bob.chat.getConversationView(conversation.id).typingUserIds.includes(aliceId));
  }, 60_000);

  it("sends to two conversations go out together; the server's refusal of the second fails that one only", async () => {
    const alice = user(live!.alice);
    alice.chat.connect();
    await state(alice.chat, "connected");
    const conversation = await alice.chat.openDirect(subjectOf(live!.bob)!);
    // No such conversation: refused as not_a_participant, named by its client_msg_id.
    const nowhere = "c0ffee00-0000-4000-8000-00000000dead";
    const tag = Math.random().toString(36).slice(2, 8);
    const [ok, refused] = await Promise.allSettled([alice.chat.send(conversation.id, `pipelined ${tag}`), alice.chat.send(nowhere, "lost")]);
    expect(ok).toMatchObject({ status: "fulfilled", value: { body: `pipelined ${tag}` } });
    expect(refused).toMatchObject({ status: "rejected", reason: { code: "not_a_participant", status: 403 } });
    expect(alice.chat.getConversationView(nowhere).messages.map((m) => m.status)).toEqual(["failed"]);
  });

  it("a refused token: one more try with a fresh one, then the error", async () => {
    let calls = 0;
    const chat = new ChatClient({
      httpUrl: live!.http,
      wsUrl: live!.ws,
      getToken: () => (calls++, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.not-a-valid-signature"),
      WebSocket,
      wake: null,
    });
    clients.push(chat);
    const errors: string[] = [];
    chat.on("error", (e) => errors.push((e as { code?: string }).code ?? e.message));
    chat.connect();
    await state(chat, "closed");
    expect(calls).toBe(2);
    expect(errors).toContain("unauthorized");
  });
});
