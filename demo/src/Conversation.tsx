import { useEffect, useLayoutEffect, useRef, useState, type FormEvent } from "react";
import type { ChatMessage } from "@chat/client";
import { useChatClient, useConversation, type UseConversation } from "@chat/client/react";
import { Presence } from "./Presence";

// Older history is asked for when the list is scrolled this close to its top.
const LOAD_OLDER_PX = 80;

export function Conversation({ id }: { id: string }) {
  const client = useChatClient();
  const view = useConversation(id);
  const [replyTo, setReplyTo] = useState<ChatMessage | null>(null);
  const others = (view.conversation?.participants ?? []).filter((p) => p.user_id !== client.userId);

  // The client learns presence changes as events, but not the state of
  // people who were already online when this conversation was made.
  const otherIds = others.map((p) => p.user_id).join(",");
  useEffect(() => {
    if (otherIds) void client.loadPresence(otherIds.split(",")).catch(() => {});
  }, [client, otherIds]);

  // Everything shown is read while the page is visible.
  useEffect(() => {
    if (view.loading || view.unreadCount === 0) return;
    const read = () => {
      if (document.visibilityState === "visible") void view.markRead().catch(() => {});
    };
    read();
    document.addEventListener("visibilitychange", read);
    return () => document.removeEventListener("visibilitychange", read);
  }, [view.markRead, view.loading, view.unreadCount]);

  return (
    <section className="conversation-pane" data-testid="conversation" data-conversation-id={id}>
      <header>
        <h2 data-testid="conversation-header">{view.title}</h2>
        <span className="members" data-testid="members">
          {others.map((p) => (
            <span key={p.user_id} className="member" data-testid="member" data-username={p.profile.username}>
              <Presence userId={p.user_id} />
              {p.profile.display_name || p.profile.username}
            </span>
          ))}
        </span>
      </header>
      {view.error && !view.conversation && (
        <p className="error" data-testid="conversation-error">
          {view.error.message}
        </p>
      )}
      <Messages view={view} onReply={setReplyTo} />
      <Typing view={view} />
      <Composer view={view} replyTo={replyTo} onReplied={() => setReplyTo(null)} />
    </section>
  );
}

function Messages({ view, onReply }: { view: UseConversation; onReply: (m: ChatMessage) => void }) {
  const client = useChatClient();
  const box = useRef<HTMLOListElement>(null);
  const anchor = useRef<{ first: string | undefined; height: number; atBottom: boolean }>({ first: undefined, height: 0, atBottom: true });
  const byId = new Map(view.messages.map((m) => [m.id, m]));

  // Receipts: each other participant is shown under the newest message they have read.
  const receipts = new Map<string, string[]>();
  for (const p of view.conversation?.participants ?? []) {
    // null in a room, where nobody sees another member's read state.
    const read = p.last_read_seq ?? 0;
    if (p.user_id === client.userId || read <= 0) continue;
    const seen = [...view.messages].reverse().find((m) => m.seq > 0 && m.seq <= read);
    if (seen) receipts.set(seen.id, [...(receipts.get(seen.id) ?? []), p.profile.display_name || p.profile.username]);
  }

  // Older messages come in on top: keep what was on screen where it was.
  // Newer ones come in below: follow them when the reader was at the bottom.
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const first = view.messages[0]?.id;
    if (anchor.current.first && first !== anchor.current.first) {
      el.scrollTop += el.scrollHeight - anchor.current.height;
    } else if (anchor.current.atBottom) {
      el.scrollTop = el.scrollHeight;
    }
    anchor.current = { ...anchor.current, first, height: el.scrollHeight };
    // A page too short to scroll could never ask for the one before it.
    if (el.scrollHeight <= el.clientHeight && view.hasOlder && !view.loadingOlder && !view.loading) {
      void view.loadOlder().catch(() => {});
    }
  }, [view]);

  const onScroll = () => {
    const el = box.current!;
    anchor.current.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    anchor.current.height = el.scrollHeight;
    if (el.scrollTop < LOAD_OLDER_PX && view.hasOlder && !view.loadingOlder) void view.loadOlder().catch(() => {});
  };

  return (
    <ol className="messages" data-testid="message-list" ref={box} onScroll={onScroll}>
      {view.loadingOlder && <li className="note">Loading older messages…</li>}
      {!view.hasOlder && !view.loading && <li className="note" data-testid="history-start">Start of the conversation</li>}
      {view.messages.map((m) => (
        <MessageRow
          key={m.client_msg_id ?? m.id}
          view={view}
          mine={m.sender_id === client.userId}
          m={m}
          quoted={m.reply_to_id ? byId.get(m.reply_to_id) : undefined}
          seenBy={receipts.get(m.id)}
          onReply={onReply}
        />
      ))}
    </ol>
  );
}

function MessageRow({
  view,
  mine,
  m,
  quoted,
  seenBy,
  onReply,
}: {
  view: UseConversation;
  mine: boolean;
  m: ChatMessage;
  quoted: ChatMessage | undefined;
  seenBy: string[] | undefined;
  onReply: (m: ChatMessage) => void;
}) {
  const client = useChatClient();
  const [editing, setEditing] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const stored = m.status === "sent" && !m.deleted_at;

  const saveEdit = (e: FormEvent) => {
    e.preventDefault();
    view.edit(m.id, editing ?? "").then(
      () => setEditing(null),
      (err: Error) => setError(err.message),
    );
  };

  return (
    <li
      className={`message ${mine ? "mine" : ""} ${m.status}`}
      data-testid="message"
      data-seq={m.seq}
      data-status={m.status}
      data-message-id={m.id}
    >
      <div className="meta">
        <span className="sender" data-testid="message-sender">
          {m.kind === "system" ? "system" : view.nameOf(m.sender_id)}
        </span>
        <time dateTime={m.created_at}>{new Date(m.created_at).toLocaleTimeString()}</time>
        {m.edited_at && !m.deleted_at && <span className="edited" data-testid="message-edited">(edited)</span>}
        {m.status === "pending" && <span className="status">sending…</span>}
      </div>
      {m.reply_to_id && (
        <blockquote className="quote" data-testid="message-quote">
          {quoted
            ? `${view.nameOf(quoted.sender_id)}: ${quoted.deleted_at ? "message deleted" : (quoted.body ?? "")}`
            : "an earlier message"}
        </blockquote>
      )}
      {editing !== null ? (
        <form className="edit" onSubmit={saveEdit}>
          <input data-testid="edit-input" value={editing} onChange={(e) => setEditing(e.target.value)} autoFocus />
          <button data-testid="edit-save" type="submit">
            Save
          </button>
          <button type="button" onClick={() => setEditing(null)}>
            Cancel
          </button>
        </form>
      ) : (
        <div className="body" data-testid="message-body">
          {m.deleted_at ? <em>message deleted</em> : (m.body ?? `[${m.kind}]`)}
        </div>
      )}
      {m.status === "failed" && (
        <div className="failed" data-testid="message-failed">
          Not sent: {m.error?.message}{" "}
          <button onClick={() => void view.retry(m.client_msg_id!).catch(() => {})}>Retry</button>
          <button onClick={() => client.discard(m.client_msg_id!)}>Discard</button>
        </div>
      )}
      {stored && (
        <div className="actions">
          <button data-testid="message-reply" onClick={() => onReply(m)}>
            Reply
          </button>
          {mine && m.kind === "text" && (
            <button data-testid="message-edit" onClick={() => setEditing(m.body ?? "")}>
              Edit
            </button>
          )}
          {mine && (
            <button
              data-testid="message-delete"
              onClick={() => view.remove(m.id).catch((err: Error) => setError(err.message))}
            >
              Delete
            </button>
          )}
        </div>
      )}
      {error && <div className="error">{error}</div>}
      {seenBy && (
        <div className="receipt" data-testid="read-receipt">
          Seen by {seenBy.join(", ")}
        </div>
      )}
    </li>
  );
}

function Typing({ view }: { view: UseConversation }) {
  if (view.typingUserIds.length === 0) return <div className="typing" />;
  const names = view.typingUserIds.map((u) => view.nameOf(u)).join(", ");
  return (
    <div className="typing" data-testid="typing-indicator">
      {names} {view.typingUserIds.length === 1 ? "is" : "are"} typing…
    </div>
  );
}

function Composer({
  view,
  replyTo,
  onReplied,
}: {
  view: UseConversation;
  replyTo: ChatMessage | null;
  onReplied: () => void;
}) {
  const [text, setText] = useState("");
  const send = (e: FormEvent) => {
    e.preventDefault();
    const body = text.trim();
    if (!body) return;
    // Shown at once as pending; the client resends it until acknowledged, and marks it failed if refused.
    void view.send(replyTo ? { body, reply_to_id: replyTo.id } : body).catch(() => {});
    setText("");
    onReplied();
  };
  return (
    <form className="composer" onSubmit={send}>
      {replyTo && (
        <div className="replying" data-testid="replying-to">
          Replying to {view.nameOf(replyTo.sender_id)}: {replyTo.body}
          <button type="button" onClick={onReplied}>
            ×
          </button>
        </div>
      )}
      <input
        data-testid="composer-input"
        placeholder="Write a message"
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          view.typing();
        }}
      />
      <button data-testid="composer-send" type="submit">
        Send
      </button>
    </form>
  );
}
