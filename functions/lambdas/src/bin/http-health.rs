//! `GET /v1/health` — public: database reachable, version, live connections.
chat::http_function!(|s, _request| chat::http::health(&s.store));
