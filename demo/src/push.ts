// Web Push in the demo: the service worker (public/sw.js) and this browser's
// subscription, saved for the signed-in user so that messages reach them
// while the app is closed (the notification function pushes to every
// subscription of a participant with no live connection).
//
// Turning notifications on: permission, the server's VAPID key
// (GET /v1/push/vapid-public-key) as applicationServerKey, the browser's
// push service subscribes, and the PushSubscription is saved
// (POST /v1/push/subscriptions). Off: DELETE, then unsubscribe.
import { ChatApiError, type ChatClient } from "@chat/client";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type PushStatus =
  | { state: "unsupported"; detail: string }
  /** The user refused notifications for this site: only the browser's settings can undo it. */
  | { state: "blocked" }
  | { state: "off" }
  | { state: "on"; endpoint: string };

/** Why this browser cannot do Web Push here, or null when it can. */
function unsupported(): string | null {
  if (!("serviceWorker" in navigator)) return "This browser has no service workers here (they need https or localhost).";
  if (!("PushManager" in window)) return "This browser has no Web Push.";
  if (!("Notification" in window)) return "This browser cannot show notifications.";
  return null;
}

let registration: Promise<ServiceWorkerRegistration> | null = null;

/** Registers the service worker once per page; it shows pushes even while no page of the app is open. */
export function registerServiceWorker(): Promise<ServiceWorkerRegistration> {
  registration ??= navigator.serviceWorker.register("/sw.js").catch((e: Error) => {
    registration = null;
    throw new Error(`The service worker could not be registered: ${e.message}`);
  });
  return registration;
}

// Which user this browser's subscription was saved for: a browser has one
// subscription per site, and the server gives it to whoever saved it last.
const SAVED_FOR = "chat-demo-push";
interface SavedFor {
  user: string;
  endpoint: string;
}
const savedFor = {
  get(): SavedFor | null {
    try {
      const value = JSON.parse(localStorage.getItem(SAVED_FOR) ?? "null") as SavedFor | null;
      return typeof value?.user === "string" && typeof value.endpoint === "string" ? value : null;
    } catch {
      return null;
    }
  },
  set: (value: SavedFor) => localStorage.setItem(SAVED_FOR, JSON.stringify(value)),
  clear: () => localStorage.removeItem(SAVED_FOR),
};

/** Whether pushes for `user` reach this browser. */
export async function pushStatus(user: string): Promise<PushStatus> {
  const detail = unsupported();
  if (detail) return { state: "unsupported", detail };
  if (Notification.permission === "denied") return { state: "blocked" };
  const subscription = await (await registerServiceWorker()).pushManager.getSubscription();
  const saved = savedFor.get();
  if (subscription && saved?.user === user && saved.endpoint === subscription.endpoint) {
    return { state: "on", endpoint: subscription.endpoint };
  }
  return { state: "off" };
}

/** Asks for permission, subscribes with the server's key and saves the subscription for `user`. */
export async function turnOn(client: ChatClient, user: string): Promise<PushStatus> {
  const permission = await Notification.requestPermission();
  if (permission === "denied") {
    throw new Error("Notifications are blocked for this site: allow them in the browser's site settings.");
  }
  if (permission !== "granted") throw new Error("Notifications were not allowed.");

  const key = await client.rest.getVapidPublicKey().then(
    (answer) => answer.public_key,
    (e: Error) => {
      if (e instanceof ChatApiError && e.code === "push_not_configured") {
        throw new Error("This server sends no Web Push (it has no VAPID key).");
      }
      throw new Error(`The server's push key could not be read: ${e.message}`);
    },
  );
  const { pushManager } = await registerServiceWorker();
  let subscription = await pushManager.getSubscription();
  // One made with another server's key (a local stack started afresh) cannot be used.
  if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  subscription ??= await pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key }).catch((e: Error) => {
    throw new Error(
      `This browser could not subscribe with its push service (${e.name}: ${e.message}). ` +
        "A headless browser, or one that cannot reach its vendor's push service, gets no Web Push.",
    );
  });

  const { endpoint, expirationTime, keys } = subscription.toJSON();
  if (!endpoint || !keys?.p256dh || !keys.auth) throw new Error("The browser's subscription has no endpoint or keys.");
  await client.rest
    .savePushSubscription({ body: { endpoint, expirationTime: expirationTime ?? null, keys: { p256dh: keys.p256dh, auth: keys.auth } } })
    .catch((e: Error) => {
      throw new Error(`The server did not save this browser's subscription: ${e.message}`);
    });
  savedFor.set({ user, endpoint });
  return { state: "on", endpoint };
}

/** Forgets this browser's subscription on the server, then in the browser. */
export async function turnOff(client: ChatClient): Promise<PushStatus> {
  const subscription = await (await registerServiceWorker()).pushManager.getSubscription();
  if (subscription) {
    await client.rest.deletePushSubscription({ body: { endpoint: subscription.endpoint } }).catch((e: Error) => {
      throw new Error(`The server did not forget this browser's subscription: ${e.message}`);
    });
    await subscription.unsubscribe();
  }
  savedFor.clear();
  return { state: "off" };
}

function base64url(bytes: ArrayBuffer): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

function sameKey(given: ArrayBuffer | null, key: string): boolean {
  return given !== null && base64url(given) === key;
}

/**
 * Calls `open` with the conversation a notification was clicked for: sent by
 * the service worker to an open page, or in the URL of a page it opened
 * (`?conversation=<id>`). Returns the unsubscribe function.
 */
export function onConversationRequested(open: (conversationId: string) => void): () => void {
  const fromUrl = new URLSearchParams(location.search).get("conversation");
  if (fromUrl && UUID.test(fromUrl)) open(fromUrl);
  if (!("serviceWorker" in navigator)) return () => {};
  const listener = (event: MessageEvent) => {
    const data = event.data as { type?: unknown; conversation_id?: unknown } | null;
    if (data?.type === "open-conversation" && typeof data.conversation_id === "string" && UUID.test(data.conversation_id)) {
      open(data.conversation_id);
    }
  };
  navigator.serviceWorker.addEventListener("message", listener);
  return () => navigator.serviceWorker.removeEventListener("message", listener);
}
