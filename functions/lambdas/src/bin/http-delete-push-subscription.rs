//! `DELETE /v1/push/subscriptions` — forget a browser's Web Push subscription.
chat::http_function!(|s, request| chat::http::delete_push_subscription(&s.verifier, &s.store, &request));
