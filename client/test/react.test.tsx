// @vitest-environment jsdom
import { act, cleanup, render, screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ChatClient } from "../src/client.js";
import { ChatProvider, useConnectionState, useConversation, useConversations } from "../src/react.js";
import { ALICE, BOB, CONV, FakeWebSocket, ack, created, fakeFetch, message, token } from "./fakes.js";

const summary = {
  id: CONV, kind: "direct", name: null, context_type: null, context_id: null, created_at: "2026-11-21T07:00:00Z",
  last_seq: 1, last_activity_at: "2026-11-21T07:00:00Z", member_count: 2, other_user_id: BOB,
  counterpart: { id: BOB, username: "bob", display_name: "Bob", avatar_url: null },
  last_message: message(1), unread_count: 1, last_read_seq: 0, archived: false, muted: false, role: "owner",
};
const participant = (user_id: string, username: string) => ({
  user_id, role: "member", joined_at: "2026-11-21T07:00:00Z", last_read_seq: 0, last_delivered_seq: 0,
  profile: { id: user_id, username, display_name: username[0].toUpperCase() + username.slice(1), avatar_url: null },
});

function List() {
  const { conversations, unreadTotal } = useConversations();
  const state = useConnectionState();
  return (
    <div>
      <p>state: {state}</p>
      <p>unread: {unreadTotal}</p>
      {conversations.map((c) => (
        <p key={c.id}>{c.title}: {c.last_message?.body} ({c.unread_count})</p>
      ))}
    </div>
  );
}

function Thread() {
  const c = useConversation(CONV);
  return (
    <ul>
      {c.messages.map((m) => (
        <li key={m.id}>{c.nameOf(m.sender_id)} says {m.body} [{m.receipt ?? m.status}]</li>
      ))}
      {c.typingUserIds.map((u) => <li key={u}>{c.nameOf(u)} is typing</li>)}
    </ul>
  );
}

describe("React binding", () => {
  beforeEach(() => FakeWebSocket.reset());
  afterEach(cleanup);

  it("lists conversations by name and shows a conversation's live messages, typing and receipts", async () => {
    const { fetch } = fakeFetch({
      "GET /v1/conversations": () => ({ body: { conversations: [summary], next_cursor: null } }),
      "GET /v1/unread": () => ({ body: { total: 1, conversations: [{ conversation_id: CONV, unread_count: 1, muted: false }] } }),
      "GET /v1/presence": () => ({ body: { presence: [] } }),
      "GET /v1/conversations/{id}": () => ({
        body: {
          conversation: { id: CONV, kind: "direct", name: null, context_type: null, context_id: null, created_by: ALICE, created_at: "2026-11-21T07:00:00Z", last_seq: 1, participants: [participant(ALICE, "alice"), participant(BOB, "bob")] },
          me: { role: "owner", joined_at: "2026-11-21T07:00:00Z", archived: false, muted: false, last_read_seq: 0, unread_count: 1 },
        },
      }),
      "GET /v1/conversations/{id}/messages": () => ({ body: { messages: [message(1)], has_more: false } }),
    });
    const client = new ChatClient({ httpUrl: "http://api.test", wsUrl: "ws://ws.test", getToken: () => token(ALICE), WebSocket: FakeWebSocket, fetch, wake: null, newClientMsgId: () => "c-1" });
    render(
      <ChatProvider client={client}>
        <List />
        <Thread />
      </ChatProvider>,
    );
    expect(await screen.findByText("Bob: message 1 (1)")).toBeTruthy();
    expect(await screen.findByText("Bob says message 1 [sent]")).toBeTruthy();
    await act(async () => FakeWebSocket.last.open());
    expect(await screen.findByText("state: connected")).toBeTruthy();
    await act(async () => {
      FakeWebSocket.last.push({ type: "typing", conversation_id: CONV, data: { user_id: BOB, is_typing: true, expires_at: new Date(Date.now() + 6000).toISOString() } });
    });
    expect(screen.getByText("Bob is typing")).toBeTruthy();
    await act(async () => FakeWebSocket.last.push(created(2)));
    expect(screen.getByText("Bob says message 2 [sent]")).toBeTruthy();
    expect(screen.queryByText("Bob is typing")).toBeNull();
    expect(screen.getByText("Bob: message 2 (2)")).toBeTruthy();
    expect(screen.getByText("unread: 2")).toBeTruthy();
    await act(async () => void client.send(CONV, "hi bob"));
    expect(screen.getByText("Alice says hi bob [pending]")).toBeTruthy();
    await act(async () => FakeWebSocket.last.push(ack("c-1", 3, { body: "hi bob" })));
    expect(screen.getByText("Alice says hi bob [sent]")).toBeTruthy();
    const at = "2026-11-21T07:01:00Z";
    await act(async () => FakeWebSocket.last.push({ type: "delivered", conversation_id: CONV, data: { user_id: BOB, last_delivered_seq: 3, delivered_at: at } }));
    expect(screen.getByText("Alice says hi bob [delivered]")).toBeTruthy();
    await act(async () => FakeWebSocket.last.push({ type: "read", conversation_id: CONV, data: { user_id: BOB, last_read_seq: 3, read_at: at } }));
    expect(screen.getByText("Alice says hi bob [read]")).toBeTruthy();
  });
});
