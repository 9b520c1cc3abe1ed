import { useEffect, useState, type FormEvent } from "react";
import type { ConversationListItem, Profile } from "@chat/client";
import { useChatClient, useConversations } from "@chat/client/react";
import { Presence } from "./Presence";

export function Sidebar({ openId, onOpen }: { openId: string | null; onOpen: (id: string) => void }) {
  const { conversations, hasMore, loadMore } = useConversations();
  return (
    <aside className="sidebar">
      <PeopleSearch onOpen={onOpen} />
      <ul className="conversations" data-testid="conversation-list">
        {conversations.map((c) => (
          <ConversationRow key={c.id} item={c} active={c.id === openId} onOpen={onOpen} />
        ))}
      </ul>
      {hasMore && (
        <button className="more" onClick={() => void loadMore()}>
          More conversations
        </button>
      )}
    </aside>
  );
}

function ConversationRow({ item, active, onOpen }: { item: ConversationListItem; active: boolean; onOpen: (id: string) => void }) {
  const client = useChatClient();
  const last = item.last_message;
  const preview = !last ? "No messages yet" : last.deleted_at ? "message deleted" : (last.body ?? `[${last.kind}]`);
  return (
    <li
      className={active ? "conversation active" : "conversation"}
      data-testid="conversation-item"
      data-conversation-id={item.id}
      data-title={item.title}
      onClick={() => onOpen(item.id)}
    >
      <div className="row">
        {item.other_user_id && <Presence userId={item.other_user_id} />}
        <span className="title" data-testid="conversation-title">
          {item.title}
        </span>
        {item.unread_count > 0 && (
          <span className="badge" data-testid="unread-badge">
            {item.unread_count}
          </span>
        )}
      </div>
      <div className="preview" data-testid="conversation-last-message">
        {last && last.sender_id && item.kind !== "direct" ? `${client.displayName(last.sender_id)}: ` : ""}
        {preview}
      </div>
    </li>
  );
}

/** Find people: open a direct conversation with one, or tick several and create a group. */
function PeopleSearch({ onOpen }: { onOpen: (id: string) => void }) {
  const client = useChatClient();
  const [q, setQ] = useState("");
  const [results, setResults] = useState<Profile[]>([]);
  const [picked, setPicked] = useState<Map<string, Profile>>(new Map());
  const [groupName, setGroupName] = useState("");
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const text = q.trim();
    if (!text) {
      setResults([]);
      return;
    }
    // Search as the user types, once they pause.
    const timer = setTimeout(() => {
      client.searchUsers(text).then(
        (users) => setResults(users.filter((u) => u.id !== client.userId)),
        (e: Error) => setError(e.message),
      );
    }, 250);
    return () => clearTimeout(timer);
  }, [client, q]);

  const act = (work: Promise<{ id: string }>) =>
    work.then(
      (c) => {
        setError(null);
        onOpen(c.id);
      },
      (e: Error) => setError(e.message),
    );

  const createGroup = (e: FormEvent) => {
    e.preventDefault();
    void act(client.createGroup(groupName.trim(), [...picked.keys()])).then(() => {
      setPicked(new Map());
      setGroupName("");
    });
  };

  return (
    <div className="people">
      <input
        data-testid="user-search"
        placeholder="Find people…"
        value={q}
        onChange={(e) => setQ(e.target.value)}
      />
      <ul className="results">
        {results.map((u) => (
          <li key={u.id} data-testid="user-result" data-username={u.username}>
            <label>
              <input
                type="checkbox"
                data-testid="user-pick"
                checked={picked.has(u.id)}
                onChange={(e) => {
                  const next = new Map(picked);
                  if (e.target.checked) next.set(u.id, u);
                  else next.delete(u.id);
                  setPicked(next);
                }}
              />
              {u.display_name || u.username} <small>@{u.username}</small>
            </label>
            <button data-testid="user-message" onClick={() => void act(client.openDirect(u.id))}>
              Message
            </button>
          </li>
        ))}
      </ul>
      {picked.size > 0 && (
        <form className="new-group" onSubmit={createGroup}>
          <input
            data-testid="group-name"
            placeholder="Group name"
            value={groupName}
            onChange={(e) => setGroupName(e.target.value)}
            required
          />
          <button data-testid="group-create" type="submit">
            Create group with {[...picked.values()].map((u) => u.display_name || u.username).join(", ")}
          </button>
        </form>
      )}
      {error && (
        <p className="error" data-testid="people-error">
          {error}
        </p>
      )}
    </div>
  );
}
