// React views of a ChatClient's snapshots. The client keeps every snapshot
// stable until something in it changes, so useSyncExternalStore re-renders
// exactly when the screen must change.
import { useCallback, useEffect, useSyncExternalStore } from "react";
import type { ChatClient, ConnectionState, ConversationListItem, ConversationView } from "@chat/client";

export function useConnectionState(client: ChatClient): ConnectionState {
  return useSyncExternalStore(
    useCallback((f) => client.subscribe(f), [client]),
    () => client.state,
  );
}

export function useConversationList(client: ChatClient): ConversationListItem[] {
  useEffect(() => {
    void client.loadConversations().catch(() => {});
  }, [client]);
  return useSyncExternalStore(
    useCallback((f) => client.subscribe(f), [client]),
    () => client.getConversationList(),
  );
}

export function useConversation(client: ChatClient, id: string): ConversationView {
  useEffect(() => {
    void client.open(id).catch(() => {});
  }, [client, id]);
  return useSyncExternalStore(
    useCallback((f) => client.subscribe(f), [client]),
    () => client.getConversationView(id),
  );
}
