//! Every function of the template, by the name its `Handler` gives it.

use chat::lambda::Error;

/// A function's whole life in its instance: set up once, then serve
/// invocations until Lambda stops the instance.
pub type Entry = fn() -> Result<(), Error>;

/// Handler name (the template's `Handler`, `_HANDLER` at run time) -> entry.
pub const HANDLERS: &[(&str, Entry)] = &[
    // `POST /v1/conversations/{id}/members` — the owner adds people.
    ("http-add-members", || {
        chat::http_function!(|s, request| chat::http::add_members(&s.verifier, &s.store, &s.pusher, &request))
    }),
    // `POST /v1/blocks` — block a user.
    ("http-block-user", || {
        chat::http_function!(|s, request| chat::http::block_user(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/conversations/{id}/connections` — members online now.
    ("http-conversation-connections", || {
        chat::http_function!(|s, request| chat::http::conversation_connections(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/conversations/{id}/stats`.
    ("http-conversation-stats", || {
        chat::http_function!(|s, request| chat::http::conversation_stats(&s.verifier, &s.store, &request))
    }),
    // `POST /v1/conversations` — a group or public room; `conversation.created` to its members.
    ("http-create-conversation", || {
        chat::http_function!(|s, request| chat::http::create_conversation(&s.verifier, &s.store, &s.pusher, &request))
    }),
    // `DELETE /v1/messages/{id}` — the author deletes.
    ("http-delete-message", || {
        chat::http_function!(|s, request| chat::http::delete_message(&s.verifier, &s.store, &s.pusher, &request))
    }),
    // `DELETE /v1/push/subscriptions` — forget a browser's Web Push subscription.
    ("http-delete-push-subscription", || {
        chat::http_function!(|s, request| chat::http::delete_push_subscription(&s.verifier, &s.store, &request))
    }),
    // `PATCH /v1/messages/{id}` — the author edits.
    ("http-edit-message", || {
        chat::http_function!(|s, request| chat::http::edit_message(&s.verifier, &s.store, &s.pusher, &request))
    }),
    // `GET /v1/conversations/{id}` — details and participants.
    ("http-get-conversation", || {
        chat::http_function!(|s, request| chat::http::get_conversation(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/me` — my profile and presence.
    ("http-get-me", || {
        chat::http_function!(|s, request| chat::http::get_me(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/presence?user_ids=` — online and last seen.
    ("http-get-presence", || {
        chat::http_function!(|s, request| chat::http::get_presence(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/health` — public: database reachable, version, live connections.
    ("http-health", || {
        chat::http_function!(|s, _request| chat::http::health(&s.store))
    }),
    // `POST /v1/conversations/{id}/join` — join a public room.
    ("http-join-conversation", || {
        chat::http_function!(|s, request| chat::http::join_conversation(&s.verifier, &s.store, &s.pusher, &request))
    }),
    // `POST /v1/conversations/{id}/leave`.
    ("http-leave-conversation", || {
        chat::http_function!(|s, request| chat::http::leave_conversation(&s.verifier, &s.store, &s.pusher, &request))
    }),
    // `GET /v1/blocks` — the users I block.
    ("http-list-blocks", || {
        chat::http_function!(|s, request| chat::http::list_blocks(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/conversations` — mine, newest first, with unread counts.
    ("http-list-conversations", || {
        chat::http_function!(|s, request| chat::http::list_conversations(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/conversations/{id}/events?after_seq=` — replay.
    ("http-list-events", || {
        chat::http_function!(|s, request| chat::http::list_events(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/conversations/{id}/messages` — history.
    ("http-list-messages", || {
        chat::http_function!(|s, request| chat::http::list_messages(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/rooms` — public rooms with member and message counts.
    ("http-list-rooms", || {
        chat::http_function!(|s, request| chat::http::list_rooms(&s.verifier, &s.store, &request))
    }),
    // `POST /v1/conversations/{id}/read` — move the read watermark; `read` to the members.
    ("http-mark-read", || {
        chat::http_function!(|s, request| chat::http::mark_read(&s.verifier, &s.store, &s.pusher, &request))
    }),
    // `POST /v1/conversations/direct` — find or create the 1:1.
    ("http-open-direct-conversation", || {
        chat::http_function!(|s, request| chat::http::open_direct_conversation(
            &s.verifier,
            &s.store,
            &s.pusher,
            &request
        ))
    }),
    // `POST /v1/push/subscriptions` — save a browser's Web Push subscription.
    ("http-save-push-subscription", || {
        chat::http_function!(|s, request| chat::http::save_push_subscription(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/messages/search?q=` — full-text search in my conversations.
    ("http-search-messages", || {
        chat::http_function!(|s, request| chat::http::search_messages(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/users?q=` — people to start a chat with; `?ids=` — profiles by id.
    ("http-search-users", || {
        chat::http_function!(|s, request| chat::http::search_users(&s.verifier, &s.store, &request))
    }),
    // `POST /v1/conversations/{id}/messages` — store, then push over WebSocket.
    ("http-send-message", || {
        chat::http_function!(|s, request| chat::http::send_message(
            &s.verifier,
            &s.store,
            &s.pusher,
            &s.notifications,
            &request
        ))
    }),
    // `DELETE /v1/blocks/{user_id}` — lift a block.
    ("http-unblock-user", || {
        chat::http_function!(|s, request| chat::http::unblock_user(&s.verifier, &s.store, &request))
    }),
    // `GET /v1/unread` — unread counts.
    ("http-unread-counts", || {
        chat::http_function!(|s, request| chat::http::unread_counts(&s.verifier, &s.store, &request))
    }),
    // `PATCH /v1/conversations/{id}` — rename, archive, mute.
    ("http-update-conversation", || {
        chat::http_function!(|s, request| chat::http::update_conversation(&s.verifier, &s.store, &s.pusher, &request))
    }),
    // `GET /v1/push/vapid-public-key` — the key browsers subscribe with.
    ("http-vapid-public-key", || {
        chat::http_function!(|s, request| chat::http::vapid_public_key(
            &s.verifier,
            s.vapid_public_key.as_deref(),
            &request
        ))
    }),
    // The notification function: Web Push and the webhook for users who were
    // offline when a message came (invoked asynchronously by the send functions).
    ("notify", || chat::lambda::serve(chat::notify::run())),
    // Scheduled (every minute): closes connections whose token expired, asks API
    // Gateway about those not seen for a while, forgets the gone ones.
    ("sweep-connections", || {
        chat::scheduled_function!(|s| chat::sweep::run(&s.store, &s.pusher, &s.config))
    }),
    // WebSocket `$connect` REQUEST authorizer.
    ("ws-authorizer", || {
        chat::lambda::serve(async {
            let services = chat::lambda::services()?;
            chat::lambda::run_authorizer(&services.verifier).await
        })
    }),
    // WebSocket `$connect`: registers the connection; presence online to contacts.
    ("ws-connect", || {
        chat::websocket_function!(|s, event| chat::ws::connect(&s.store, &s.pusher, &event))
    }),
    // WebSocket `$default`: `unknown_action` / `invalid_json` errors.
    ("ws-default", || {
        chat::websocket_function!(|s, event| chat::ws::default_route(&s.pusher, &event))
    }),
    // WebSocket `$disconnect`: unregisters; presence offline to contacts.
    ("ws-disconnect", || {
        chat::websocket_function!(|s, event| chat::ws::disconnect(&s.store, &s.pusher, &event))
    }),
    // WebSocket `markDelivered`: move the delivered watermark; `delivered` to the senders.
    ("ws-mark-delivered", || {
        chat::websocket_function!(|s, event| chat::ws::mark_delivered(&s.store, &s.pusher, &event))
    }),
    // WebSocket `markRead`: move the read watermark; `read` to the members.
    ("ws-mark-read", || {
        chat::websocket_function!(|s, event| chat::ws::mark_read(&s.store, &s.pusher, &event))
    }),
    // WebSocket `ping`: `pong`, refresh last seen.
    ("ws-ping", || {
        chat::websocket_function!(|s, event| chat::ws::ping(&s.store, &s.pusher, &event))
    }),
    // WebSocket `sendMessage`: store, ack the sender, push to the members.
    ("ws-send-message", || {
        chat::websocket_function!(|s, event| chat::ws::send_message(&s.store, &s.pusher, &s.notifications, &event))
    }),
    // WebSocket `typing`: relay to the other members with `expires_at`.
    ("ws-typing", || {
        chat::websocket_function!(|s, event| chat::ws::typing(&s.store, &s.pusher, &event))
    }),
];
