//! HS256 tokens shaped like the ones Supabase issues: user access tokens
//! (what clients send) and the long-lived `anon` / `service_role` API keys.

use std::time::Duration;

use jsonwebtoken::{encode, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The users `sql/seed.sql` creates, with its fixed ids.
pub const SEED_USERS: [SeedUser; 4] = [
    SeedUser::new("alice", 0x0000_0000_a11c),
    SeedUser::new("bob", 0x0000_0000_0b0b),
    SeedUser::new("carol", 0x0000_000c_a201),
    SeedUser::new("dave", 0x0000_0000_da5e),
];

#[derive(Clone, Copy, Debug)]
pub struct SeedUser {
    pub name: &'static str,
    pub id: Uuid,
}

impl SeedUser {
    const fn new(name: &'static str, node: u64) -> Self {
        // 00000000-0000-4000-8000-<node>: a valid v4 layout with a readable tail.
        let id = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 | node as u128);
        Self { name, id }
    }
}

/// Who a token is for: a seed user by name, or any user id.
#[derive(Clone, Debug, PartialEq)]
pub struct Subject {
    pub id: Uuid,
    pub email: String,
}

/// How the command line names a user (`chat-local token USER`).
impl std::str::FromStr for Subject {
    type Err = String;

    fn from_str(user: &str) -> Result<Self, String> {
        if let Some(seed) = SEED_USERS.iter().find(|seed| seed.name == user) {
            return Ok(Self::from(seed));
        }
        match Uuid::parse_str(user) {
            Ok(id) => Ok(Self {
                id,
                email: String::new(),
            }),
            Err(_) => Err("not alice, bob, carol, dave or a user's UUID".into()),
        }
    }
}

impl From<&SeedUser> for Subject {
    fn from(seed: &SeedUser) -> Self {
        Self {
            id: seed.id,
            email: format!("{}@example.com", seed.name),
        }
    }
}

/// The claims of a Supabase Auth access token.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub sub: String,
    pub role: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub email: String,
    pub phone: String,
    pub session_id: String,
    pub aal: String,
    pub is_anonymous: bool,
    pub app_metadata: serde_json::Value,
    pub user_metadata: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub iss: Option<String>,
}

/// The claims of a Supabase API key.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct ApiKeyClaims {
    pub iss: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
}

pub struct TokenMinter {
    key: EncodingKey,
    /// `SUPABASE_JWT_ISSUER` when set: verifiers configured with it check `iss`.
    issuer: Option<String>,
}

/// API keys outlive any local stack, as Supabase's (ten years) do.
const API_KEY_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

impl TokenMinter {
    pub fn new(jwt_secret: &str, issuer: Option<String>) -> Self {
        Self {
            key: EncodingKey::from_secret(jwt_secret.as_bytes()),
            issuer: issuer.filter(|issuer| !issuer.is_empty()),
        }
    }

    pub fn from_env(jwt_secret: &str) -> Self {
        Self::new(jwt_secret, std::env::var("SUPABASE_JWT_ISSUER").ok())
    }

    pub fn access_token(&self, subject: &Subject, ttl: Duration) -> String {
        self.sign(&self.access_claims(subject, chrono::Utc::now().timestamp(), ttl))
    }

    fn access_claims(&self, subject: &Subject, now: i64, ttl: Duration) -> AccessClaims {
        AccessClaims {
            sub: subject.id.to_string(),
            role: "authenticated".into(),
            aud: "authenticated".into(),
            iat: now,
            exp: now + seconds(ttl),
            email: subject.email.clone(),
            phone: String::new(),
            session_id: Uuid::new_v4().to_string(),
            aal: "aal1".into(),
            is_anonymous: false,
            app_metadata: serde_json::json!({"provider": "email", "providers": ["email"]}),
            user_metadata: serde_json::json!({}),
            iss: self.issuer.clone(),
        }
    }

    /// `role` is `anon` or `service_role`. Dated from `issued_at` so the keys
    /// of a state dir are the same on every start.
    pub fn api_key(&self, role: &str, issued_at: i64) -> String {
        self.sign(&ApiKeyClaims {
            iss: "supabase".into(),
            role: role.into(),
            iat: issued_at,
            exp: issued_at + seconds(API_KEY_LIFETIME),
        })
    }

    fn sign(&self, claims: &impl Serialize) -> String {
        encode(&Header::default(), claims, &self.key).expect("HS256 signing cannot fail")
    }
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};

    const SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";

    fn decode_as<T: serde::de::DeserializeOwned>(token: &str, audience: Option<&str>) -> T {
        let mut validation = Validation::new(Algorithm::HS256);
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        decode::<T>(token, &DecodingKey::from_secret(SECRET.as_bytes()), &validation)
            .expect("token verifies")
            .claims
    }

    #[test]
    fn seed_users_have_the_fixed_ids() {
        let ids: Vec<String> = SEED_USERS.iter().map(|user| user.id.to_string()).collect();
        assert_eq!(
            ids,
            [
                "00000000-0000-4000-8000-00000000a11c",
                "00000000-0000-4000-8000-000000000b0b",
                "00000000-0000-4000-8000-0000000ca201",
                "00000000-0000-4000-8000-00000000da5e",
            ]
        );
    }

    #[test]
    fn access_tokens_decode_back_with_supabase_claims() {
        let minter = TokenMinter::new(SECRET, None);
        let alice = "alice".parse::<Subject>().unwrap();
        let token = minter.access_token(&alice, Duration::from_secs(600));
        let claims: AccessClaims = decode_as(&token, Some("authenticated"));
        assert_eq!(claims.sub, "00000000-0000-4000-8000-00000000a11c");
        assert_eq!(claims.role, "authenticated");
        assert_eq!(claims.email, "alice@example.com");
        assert_eq!(claims.exp - claims.iat, 600);
        assert!(Uuid::parse_str(&claims.session_id).is_ok());
        assert_eq!(claims.iss, None);
        assert!(!token.split('.').nth(1).unwrap().is_empty());
    }

    #[test]
    fn issuer_is_set_only_when_configured() {
        let minter = TokenMinter::new(SECRET, Some("http://127.0.0.1/auth/v1".into()));
        let token = minter.access_token(&"bob".parse::<Subject>().unwrap(), Duration::from_secs(60));
        let claims: AccessClaims = decode_as(&token, Some("authenticated"));
        assert_eq!(claims.iss.as_deref(), Some("http://127.0.0.1/auth/v1"));

        let empty = TokenMinter::new(SECRET, Some(String::new()));
        let token = empty.access_token(&"bob".parse::<Subject>().unwrap(), Duration::from_secs(60));
        let raw: serde_json::Value = decode_as(&token, Some("authenticated"));
        assert!(raw.get("iss").is_none());
    }

    #[test]
    fn any_uuid_is_a_subject_but_unknown_names_are_not() {
        let id = "4b5f2d1e-8f0a-4c39-9d0e-2f6a1b7c3d4e";
        assert_eq!(id.parse::<Subject>().unwrap().id.to_string(), id);
        assert!("mallory".parse::<Subject>().is_err());
    }

    #[test]
    fn api_keys_carry_their_role_and_are_stable() {
        let minter = TokenMinter::new(SECRET, None);
        let anon = minter.api_key("anon", 1_700_000_000);
        assert_eq!(anon, minter.api_key("anon", 1_700_000_000));
        let claims: ApiKeyClaims = decode_as(&anon, None);
        assert_eq!(claims.role, "anon");
        assert!(claims.exp > claims.iat + 9 * 365 * 24 * 3600);
        let service: ApiKeyClaims = decode_as(&minter.api_key("service_role", 1_700_000_000), None);
        assert_eq!(service.role, "service_role");
    }
}
