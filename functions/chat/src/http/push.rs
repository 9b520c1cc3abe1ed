//! Web Push registrations: a browser's `PushSubscription` saved for the
//! caller, removed, and the key browsers subscribe with. Who gets notified,
//! and how, is `crate::notify`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{json_body, json_response, signed_in};
use crate::auth::TokenVerifier;
use crate::error::ApiError;
use crate::store::PostgrestStore;

/// `PushSubscription.toJSON()` as a browser gives it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionInput {
    endpoint: String,
    /// When the push service will end it, if it says; not kept: a push after
    /// it is answered 404 or 410, which removes the subscription.
    #[serde(default, rename = "expirationTime")]
    _expiration_time: Option<Value>,
    keys: SubscriptionKeys,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointInput {
    endpoint: String,
}

/// The database checks the key's encoding and length; whether the point is
/// on the curve takes the curve's arithmetic, so it is checked here.
fn check_point(p256dh: &str) -> Result<(), ApiError> {
    match URL_SAFE_NO_PAD.decode(p256dh.trim_end_matches('=')) {
        Ok(bytes) if bytes.len() == 65 && bytes[0] == 4 && p256::PublicKey::from_sec1_bytes(&bytes).is_err() => {
            Err(ApiError::unprocessable(
                "invalid_push_subscription",
                "keys.p256dh is not a point of the P-256 curve.",
            ))
        }
        // Another length or encoding: the database names what is wrong.
        _ => Ok(()),
    }
}

/// `POST /v1/push/subscriptions` — save this browser's subscription for the
/// caller: 201 when it is new to them, 200 when it was saved before (its
/// keys updated).
pub async fn save_push_subscription(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    request: &Request,
) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        let input: SubscriptionInput = json_body(request)?;
        check_point(&input.keys.p256dh)?;
        let saved = store
            .save_push_subscription(token, &input.endpoint, &input.keys.p256dh, &input.keys.auth)
            .await?;
        let status = if saved["created"] == Value::Bool(true) {
            201
        } else {
            200
        };
        Ok(json_response(status, &saved))
    })
    .await
}

/// `DELETE /v1/push/subscriptions` `{"endpoint"}` — forget one of the
/// caller's subscriptions (200 whether or not there was one: `removed` says).
pub async fn delete_push_subscription(
    verifier: &TokenVerifier,
    store: &PostgrestStore,
    request: &Request,
) -> Response<Body> {
    signed_in(verifier, request, async |_caller, token| {
        let input: EndpointInput = json_body(request)?;
        Ok(json_response(
            200,
            &store.delete_push_subscription(token, &input.endpoint).await?,
        ))
    })
    .await
}

/// `GET /v1/push/vapid-public-key` — the `applicationServerKey` browsers
/// subscribe with; 404 `push_not_configured` when Web Push is off.
pub async fn vapid_public_key(verifier: &TokenVerifier, public_key: Option<&str>, request: &Request) -> Response<Body> {
    signed_in(verifier, request, async |_caller, _token| match public_key {
        Some(key) => Ok(json_response(200, &json!({"public_key": key}))),
        None => Err(ApiError::new(
            404,
            "push_not_configured",
            "Web Push is not configured on this deployment.",
        )),
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_off_the_curve_is_refused_and_other_shapes_are_left_to_the_database() {
        // RFC 8291's example browser key.
        let good = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        assert!(check_point(good).is_ok());
        assert!(check_point(&format!("{good}=")).is_ok());
        // The same x with another y is not on the curve.
        let off = format!("{}AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &good[..44]);
        assert_eq!(URL_SAFE_NO_PAD.decode(&off).unwrap().len(), 65);
        assert_eq!(check_point(&off).unwrap_err().code, "invalid_push_subscription");
        for other in ["", "BAAA", "not base64url!"] {
            assert!(check_point(other).is_ok(), "{other}");
        }
    }
}
