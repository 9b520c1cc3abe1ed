import { useEffect, useMemo, useState } from "react";
import { ChatClient } from "@chat/client";
import { ChatProvider, useChatClient, useConnectionState } from "@chat/client/react";
import { Conversation } from "./Conversation";
import { Notifications } from "./Notifications";
import { onConversationRequested } from "./push";
import { loadDevSession, signedInUser, tokenSource, type DevSession } from "./session";
import { Sidebar } from "./Sidebar";

export function App() {
  const [session, setSession] = useState<DevSession | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [user, setUser] = useState<string | null>(signedInUser.get());

  useEffect(() => {
    try {
      pageSizeFromUrl();
    } catch (e) {
      return setError((e as Error).message);
    }
    loadDevSession().then(setSession, (e: Error) => setError(e.message));
  }, []);

  if (error) return <p className="fatal" data-testid="fatal-error">{error}</p>;
  if (!session) return <p className="loading">Loading…</p>;
  if (!user) {
    return (
      <main className="signin" data-testid="signin">
        <h1>Chat demo</h1>
        <p>Sign in as a seeded user of the local stack (development only).</p>
        <div className="signin-users">
          {session.users.map((name) => (
            <button
              key={name}
              data-testid={`signin-${name}`}
              onClick={() => {
                signedInUser.set(name);
                setUser(name);
              }}
            >
              {name}
            </button>
          ))}
        </div>
        <p>
          <a href="/api.html">API reference</a>
        </p>
      </main>
    );
  }
  return (
    <Chat
      key={user}
      session={session}
      user={user}
      onSignOut={() => {
        signedInUser.clear();
        setUser(null);
      }}
    />
  );
}

function Chat({ session, user, onSignOut }: { session: DevSession; user: string; onSignOut: () => void }) {
  const client = useMemo(
    () =>
      new ChatClient({
        httpUrl: session.http_url,
        wsUrl: session.websocket_url,
        getToken: tokenSource(user),
        pageSize: pageSizeFromUrl(),
      }),
    [session, user],
  );
  return (
    <ChatProvider client={client}>
      <ChatScreen user={user} onSignOut={onSignOut} />
    </ChatProvider>
  );
}

function ChatScreen({ user, onSignOut }: { user: string; onSignOut: () => void }) {
  const client = useChatClient();
  const state = useConnectionState();
  const [openId, setOpenId] = useState<string | null>(null);
  const [me, setMe] = useState<string>(user);

  useEffect(() => {
    client.rest.getMe().then(({ user: p }) => setMe(p.display_name || p.username), () => {});
  }, [client]);

  // A notification clicked: its conversation.
  useEffect(() => onConversationRequested(setOpenId), []);

  return (
    <div className="app" data-testid="app" data-user={user}>
      <header>
        <strong>Chat demo</strong>
        <span className="me" data-testid="me">
          {me}
        </span>
        <span className={`state state-${state}`} data-testid="connection-state" data-state={state}>
          {state}
        </span>
        <Notifications user={user} />
        <a href="/api.html" target="_blank" rel="noreferrer">
          API reference
        </a>
        <button data-testid="signout" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <Sidebar openId={openId} onOpen={setOpenId} />
      {openId ? <Conversation key={openId} id={openId} /> : <section className="empty">Pick a conversation, or start one.</section>}
    </div>
  );
}

/** `?page_size=N` (1–100, the API's limit): history pages of N messages, to see paging with little history. */
function pageSizeFromUrl(): number | undefined {
  const given = new URLSearchParams(location.search).get("page_size");
  if (given === null) return undefined;
  const n = Number(given);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new Error(`page_size must be a whole number from 1 to 100, not ${given}`);
  return n;
}
