// @ts-check
/// <reference lib="webworker" />
// The demo's service worker: shows a notification for each Web Push the
// notification function sends to this browser, and opens its conversation
// when the notification is clicked.
//
// A push's payload is the JSON of functions/chat/src/notify (documented under
// POST /v1/push/subscriptions in docs/openapi.yaml): {type: "message.created",
// conversation: {id, kind, name}, message: {id, seq, kind, body, created_at},
// sender: {id, username, display_name, avatar_url} or null}. `body` is null
// when the deployment's NotificationPreview is `none` (and for attachments
// without a caption).
//
// Type-checked by tsconfig.sw.json; served as /sw.js so its scope is the whole app.

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Chromium's options beyond those TypeScript's DOM types list.
 * @typedef {NotificationOptions & {renotify?: boolean, timestamp?: number}} ShownOptions
 */

/** @param {unknown} value */
const text = (value) => (typeof value === "string" && value.trim() ? value : null);

/**
 * What to show for a push: one notification per conversation (its `tag`), so
 * a newer message replaces the one still on screen instead of stacking up.
 * @param {any} payload the decrypted push, parsed; anything else gets a plain notification
 * @returns {{title: string, options: ShownOptions}}
 */
function notificationFor(payload) {
  const conversation = payload?.conversation;
  const message = payload?.message;
  if (payload?.type !== "message.created" || !UUID.test(String(conversation?.id))) {
    // A push must show something (userVisibleOnly): never drop one silently.
    return { title: "Chat", options: { body: "New message", tag: "chat" } };
  }
  const sender = text(payload.sender?.display_name) ?? text(payload.sender?.username) ?? "Someone";
  const what =
    text(message?.body) ??
    (message?.kind === "image" ? "sent an image" : message?.kind === "file" ? "sent a file" : "New message");
  const direct = conversation.kind === "direct";
  const created = Date.parse(message?.created_at);
  return {
    title: direct ? sender : (text(conversation.name) ?? "Group"),
    options: {
      body: direct ? what : `${sender}: ${what}`,
      tag: `conversation:${conversation.id}`,
      // The replacement alerts too: it is a new message.
      renotify: true,
      ...(Number.isFinite(created) ? { timestamp: created } : {}),
      data: { conversation_id: conversation.id, message_id: message?.id ?? null, seq: message?.seq ?? null },
    },
  };
}

/** @param {PushMessageData | null} data */
function parsed(data) {
  try {
    return data?.json() ?? null;
  } catch {
    return null;
  }
}

/**
 * Brings the app to the conversation: a window of the app already open (the
 * focused one first) is told to open it and focused; with none, a new one
 * opens at `/?conversation=<id>`.
 * @param {unknown} conversationId
 */
async function openConversation(conversationId) {
  const id = typeof conversationId === "string" && UUID.test(conversationId) ? conversationId : null;
  const windows = await sw.clients.matchAll({ type: "window", includeUncontrolled: true });
  const open = windows.find((w) => w.focused) ?? windows[0];
  if (open) {
    if (id) open.postMessage({ type: "open-conversation", conversation_id: id });
    // Focusing is allowed while handling a click; elsewhere it is refused, and the page still opened it.
    return open.focus().catch(() => open);
  }
  return sw.clients.openWindow(id ? `/?conversation=${id}` : "/");
}

sw.addEventListener("install", () => void sw.skipWaiting());
sw.addEventListener("activate", (event) => event.waitUntil(sw.clients.claim()));

sw.addEventListener("push", (event) => {
  const { title, options } = notificationFor(parsed(event.data));
  event.waitUntil(sw.registration.showNotification(title, options));
});

sw.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openConversation(event.notification.data?.conversation_id));
});
