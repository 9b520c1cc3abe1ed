import { usePresence } from "@chat/client/react";

export function Presence({ userId }: { userId: string }) {
  const p = usePresence(userId);
  const online = p?.online ?? false;
  const title = online ? "online" : p?.last_seen_at ? `last seen ${new Date(p.last_seen_at).toLocaleString()}` : "offline";
  return <span className={online ? "dot online" : "dot"} title={title} data-testid="presence" data-online={online} />;
}
