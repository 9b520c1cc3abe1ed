// React binding: a provider for one ChatClient and hooks reading its
// snapshots through useSyncExternalStore (the client replaces a snapshot only
// when what it shows changed, so components re-render only then).
import { createContext, useCallback, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from "react";
import type { ChatClient, ConversationListItem, ConversationView } from "./client.js";
import type { ConnectionState } from "./connection.js";
import type { MessageDraft } from "./outbox.js";
import type { Message, Presence, PublicProfile } from "./types.js";

const ChatContext = createContext<ChatClient | null>(null);

/** Makes `client` available to the hooks below, and connects it while mounted. */
export function ChatProvider({ client, children, connect = true }: { client: ChatClient; children?: ReactNode; connect?: boolean }) {
  useEffect(() => {
    if (!connect) return;
    client.connect();
    return () => client.close();
  }, [client, connect]);
  return <ChatContext.Provider value={client}>{children}</ChatContext.Provider>;
}

export function useChatClient(): ChatClient {
  const client = useContext(ChatContext);
  if (!client) throw new Error("useChatClient: wrap the component in <ChatProvider client={…}>");
  return client;
}

function useSnapshot<T>(read: (client: ChatClient) => T): T {
  const client = useChatClient();
  const subscribe = useCallback((listener: () => void) => client.subscribe(listener), [client]);
  return useSyncExternalStore(subscribe, () => read(client), () => read(client));
}

/** `idle`, `connecting`, `connected`, `reconnecting` or `closed`. */
export function useConnectionState(): ConnectionState {
  return useSnapshot((c) => c.state);
}

export interface UseConversations {
  /** Newest activity first, each with `title`, `last_message` and `unread_count`. */
  conversations: ConversationListItem[];
  loaded: boolean;
  unreadTotal: number;
  hasMore: boolean;
  loadMore(): Promise<void>;
}

/** The conversation list (loaded on first use and kept current by events). */
export function useConversations(): UseConversations {
  const client = useChatClient();
  const conversations = useSnapshot((c) => c.getConversationList());
  const loaded = useSnapshot((c) => c.conversationListLoaded);
  const hasMore = useSnapshot((c) => c.hasMoreConversations);
  const unreadTotal = useSnapshot((c) => c.getUnreadTotal());
  useEffect(() => {
    if (!client.conversationListLoaded) client.loadConversations().catch(() => {});
  }, [client]);
  return { conversations, loaded, unreadTotal, hasMore, loadMore: () => client.loadMoreConversations() };
}

export interface UseConversation extends ConversationView {
  send(draft: string | MessageDraft): Promise<Message>;
  /** Call on every keystroke in the composer. */
  typing(): void;
  stopTyping(): void;
  /** Marks read up to `seq`, default everything. */
  markRead(seq?: number): Promise<void>;
  loadOlder(): Promise<void>;
  edit(messageId: string, body: string): Promise<Message>;
  remove(messageId: string): Promise<Message>;
  retry(clientMsgId: string): Promise<Message>;
  /** The name to show for a user id. */
  nameOf(userId: string | null | undefined): string;
}

/** One conversation: its messages (older pages on demand), sending, typing and read state. */
export function useConversation(id: string): UseConversation {
  const client = useChatClient();
  const view = useSnapshot((c) => c.getConversationView(id));
  useSnapshot((c) => c.getConversationList()); // names come from profiles: re-render when they arrive
  useEffect(() => {
    client.open(id).catch(() => {});
    return () => client.stopTyping(id);
  }, [client, id]);
  return useMemo(
    () => ({
      ...view,
      send: (draft) => client.send(id, draft),
      typing: () => client.typing(id),
      stopTyping: () => client.stopTyping(id),
      markRead: (seq) => client.markRead(id, seq),
      loadOlder: () => client.loadOlder(id),
      edit: (messageId, body) => client.edit(messageId, body),
      remove: (messageId) => client.remove(messageId),
      retry: (clientMsgId) => client.retry(id, clientMsgId),
      nameOf: (userId) => client.displayName(userId),
    }),
    [client, id, view],
  );
}

/** A user's profile from the cache, fetched when missing. */
export function useProfile(userId: string | null | undefined): PublicProfile | undefined {
  const client = useChatClient();
  const profile = useSnapshot((c) => (userId ? c.getProfile(userId) : undefined));
  useEffect(() => {
    if (userId && !client.getProfile(userId)) client.loadProfiles([userId]).catch(() => {});
  }, [client, userId]);
  return profile;
}

/** A contact's presence, from `presence` events (and `GET /v1/presence` after each reconnect). */
export function usePresence(userId: string | null | undefined): Presence | undefined {
  return useSnapshot((c) => (userId ? c.getPresence(userId) : undefined));
}
