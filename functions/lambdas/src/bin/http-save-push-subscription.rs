//! `POST /v1/push/subscriptions` — save a browser's Web Push subscription.
chat::http_function!(|s, request| chat::http::save_push_subscription(&s.verifier, &s.store, &request));
