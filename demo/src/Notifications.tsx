import { useEffect, useState } from "react";
import { useChatClient } from "@chat/client/react";
import { pushStatus, turnOff, turnOn, type PushStatus } from "./push";

const LABEL: Record<PushStatus["state"], string> = {
  unsupported: "Notifications unavailable",
  blocked: "Notifications blocked",
  off: "Notifications off",
  on: "Notifications on",
};

/** Web Push for the signed-in user in this browser: its state, a switch, and why it failed. */
export function Notifications({ user }: { user: string }) {
  const client = useChatClient();
  const [status, setStatus] = useState<PushStatus | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    pushStatus(user).then(
      (s) => current && setStatus(s),
      (e: Error) => current && setError(e.message),
    );
    return () => {
      current = false;
    };
  }, [user]);

  if (!status) return error ? <Problem text={error} /> : null;
  const change = (work: Promise<PushStatus>) => {
    setBusy(true);
    setError(null);
    work
      .then(setStatus, (e: Error) => {
        setError(e.message);
        // A refused permission, say, changes what can be done next.
        return pushStatus(user).then(setStatus, () => {});
      })
      .finally(() => setBusy(false));
  };
  const switchable = status.state === "on" || status.state === "off";
  return (
    <span className="push" data-testid="push-state" data-state={status.state} title={status.state === "unsupported" ? status.detail : undefined}>
      {LABEL[status.state]}
      {switchable && (
        <button
          data-testid="push-toggle"
          disabled={busy}
          onClick={() => change(status.state === "on" ? turnOff(client) : turnOn(client, user))}
        >
          {status.state === "on" ? "Turn off" : "Turn on"}
        </button>
      )}
      {error && <Problem text={error} />}
    </span>
  );
}

function Problem({ text }: { text: string }) {
  return (
    <span className="push-error" data-testid="push-error" role="alert">
      {text}
    </span>
  );
}
