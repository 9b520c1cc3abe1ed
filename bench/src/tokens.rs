//! Access tokens as Supabase Auth issues them, signed with the stack's secret.

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use uuid::Uuid;

/// Longer than any run; the WebSocket routes refuse expired tokens.
const LIFETIME_SECS: i64 = 4 * 60 * 60;

pub fn access_token(user_id: Uuid, jwt_secret: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "sub": user_id.to_string(),
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + LIFETIME_SECS,
    });
    // Encoding a JSON object with an HMAC key cannot fail.
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(jwt_secret.as_bytes()),
    )
    .unwrap_or_default()
}
